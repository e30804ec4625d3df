import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { BackendPoolSpec } from '../../src/api/backendpool.js';
import type { Backend } from '../../src/tools/backend/server.js';
import {
  poolInput as addressPoolInput,
  startAds as startBenchAds,
  type Ads,
} from '../../src/tools/bench/ads.js';
import { EnvoyProcess as Envoy } from '../../src/tools/bench/envoy.js';
import { renderBootstrap, type BootstrapOptions } from '../../src/xds/bootstrap.js';
import type { XdsServerOptions } from '../../src/xds/server.js';
import type { ResourceMutator } from '../../src/xds/resources.js';
import type { Msg } from '../../src/xds/routes.js';
import { TYPE, type XdsEndpointInput, type XdsPoolInput } from '../../src/xds/types.js';
import { demoClient, echo, quiet, type DemoClient } from './grpc.js';
import { logDir } from './procs.js';
import { waitFor } from './wait.js';

export type { Ads };

/** sibyl's ADS (src/tools/bench/ads.ts) with the tests' logger and a 200 ms push interval. */
export function startAds(
  opts: Partial<XdsServerOptions> = {},
  creds = grpc.ServerCredentials.createInsecure(),
  port = 0,
): Promise<Ads> {
  return startBenchAds({ log: quiet(), pushIntervalMs: 200, ...opts }, creds, port);
}

/**
 * A resource mutator (XdsServerOptions.mutate) that, while `on()` says so, makes every endpoint weight
 * in EDS 0, which grpc-go and Envoy refuse: a real NACK from a real client.
 */
export function zeroWeightsWhile(on: () => boolean): ResourceMutator {
  return (type: string, r: Msg): Msg =>
    on() && type === TYPE.endpoint
      ? (JSON.parse(
          JSON.stringify(r).replace(
            /"load_balancing_weight":\{"value":\d+\}\}/g,
            '"load_balancing_weight":{"value":0}}',
          ),
        ) as Msg)
      : r;
}

/** A spec that sets every section a data plane is programmed from (retries on three codes, one unknown to xDS). */
export const EVERY_POLICY = {
  timeout: { default: '3s' },
  retries: { maxAttempts: 3, retryOn: ['unavailable', 'internal', 'aborted'], budgetPercent: 50 },
  hedging: { enabled: true, delay: '40ms' },
  idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
  concurrency: { minLimit: 2, maxLimit: 50 },
} satisfies Partial<BackendPoolSpec>;

/** A pool's xDS input (src/tools/bench/ads.ts) over in-process backends. */
export function poolInput(
  key: string,
  backends: readonly Backend[],
  spec: Partial<BackendPoolSpec> = {},
  endpoint: (b: Backend, i: number) => Partial<XdsEndpointInput> = () => ({}),
): XdsPoolInput {
  return addressPoolInput(
    key,
    backends.map((b) => b.address),
    spec,
    (_a, i) => endpoint(backends[i] as Backend, i),
  );
}

export interface Batch {
  calls: number;
  backends: Record<string, number>;
  errors: Record<string, number>;
  lastError: string;
}

export interface TracedCall {
  at: number;
  backend: string;
  code: number;
  error: string;
}

/**
 * A failed call's backend: the demo backend answers a failure with trailers only, whose
 * x-sibyl-backend some clients do not show as a header; its message names the backend.
 */
function withBackend(c: TracedCall): TracedCall {
  return c.backend ? c : { ...c, backend: /^(\w+): injected/.exec(c.error)?.[1] ?? '' };
}

/** Each backend's share of the calls named. */
export function shareOf(backends: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of backends) out[b] = (out[b] ?? 0) + 1 / backends.length;
  return out;
}

/**
 * Calls through an Envoy (or any proxy) with a demo client: `rate` a second (0: one after another)
 * until `stop()` or `n` calls; each call's end time, backend and status as GoXdsClient traces them.
 */
export function traceEnvoy(
  client: DemoClient,
  rate: number,
  n = Infinity,
): { calls: TracedCall[]; done: Promise<void>; stop(): Promise<void> } {
  const calls: TracedCall[] = [];
  let stopped = false;
  const done = (async () => {
    const gap = rate > 0 ? 1000 / rate : 0;
    for (let i = 0; i < n && !stopped; i++) {
      const t0 = Date.now();
      const r = await echo(client, {}, { deadlineMs: 5000 });
      const backend = r.headers?.get('x-sibyl-backend')[0] ?? r.status.metadata?.get('x-sibyl-backend')[0];
      calls.push(
        withBackend({
          at: Date.now(),
          backend: String(backend ?? ''),
          code: r.status.code,
          error: r.status.details,
        }),
      );
      if (gap > 0) await new Promise((res) => setTimeout(res, Math.max(0, gap - (Date.now() - t0))));
    }
  })();
  return {
    calls,
    done,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/**
 * The project's grpc-go proxyless client (test/xds/go-client, built by hack/k8s-tools.sh as
 * sibyl-xds-client), driven over stdin/stdout: batches of calls, or a trace of every call.
 */
export class GoXdsClient {
  private readonly child: ChildProcess;
  private buffer = '';
  private readonly lines: Record<string, unknown>[] = [];
  readonly traced: TracedCall[] = [];
  private stderr = '';

  constructor(
    readonly name: string,
    target: string,
    bootstrap: string,
    env: NodeJS.ProcessEnv = {},
    args: string[] = [],
  ) {
    this.child = spawn('sibyl-xds-client', ['--target', target, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: bootstrap, ...env },
    });
    const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
    this.child.stderr?.on('data', (d: Buffer) => {
      log.write(d);
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.child.once('exit', () => log.end());
    this.child.stdout?.on('data', (d: Buffer) => {
      const parts = (this.buffer + d.toString()).split('\n');
      this.buffer = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.trim()) continue;
        const line = JSON.parse(p) as Record<string, unknown>;
        if (line.op === 'call') this.traced.push(withBackend(line as unknown as TracedCall));
        else this.lines.push(line);
      }
    });
  }

  private send(cmd: Record<string, unknown>): void {
    if (this.child.exitCode !== null) throw new Error(`${this.name} exited: ${this.stderr}`);
    this.child.stdin?.write(`${JSON.stringify(cmd)}\n`);
  }

  private async next(op: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return waitFor(
      () => {
        if (this.child.exitCode !== null) throw new Error(`${this.name} exited: ${this.stderr}`);
        const i = this.lines.findIndex((l) => l.op === op);
        return i >= 0 ? this.lines.splice(i, 1)[0] : undefined;
      },
      { timeoutMs, intervalMs: 20, what: `${this.name} to answer ${op}` },
    );
  }

  async batch(
    calls: number,
    opts: { concurrency?: number; rate?: number; timeoutMs?: number } = {},
  ): Promise<Batch> {
    this.send({ op: 'batch', calls, concurrency: opts.concurrency ?? 4, rate: opts.rate ?? 0 });
    return (await this.next('batch', opts.timeoutMs ?? 60_000)) as unknown as Batch;
  }

  trace(rate: number): void {
    this.send({ op: 'trace', rate });
  }

  async stopTrace(): Promise<void> {
    this.send({ op: 'stop' });
    await this.next('stopped', 30_000);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/** A grpc-go client whose bootstrap points at `ads` (plaintext, no token). */
export function goClient(name: string, target: string, ads: string, extra: Partial<BootstrapOptions> = {}) {
  return new GoXdsClient(
    name,
    `xds:///${target}`,
    renderBootstrap('grpc', { server: ads, insecure: true, nodeId: name, ...extra }),
  );
}

/** A real Envoy (src/tools/bench/envoy.ts): `envoy` from the PATH, its bootstrap and log in the tests' log folder. */
export type EnvoyProcess = Envoy;
export const EnvoyProcess = {
  create: (name: string, baseId: number, opts: BootstrapOptions): Promise<Envoy> =>
    Envoy.create(name, baseId, opts, { bin: 'envoy', dir: logDir }),
};

/** An Envoy started and ready (its listener from LDS accepting), and a demo client dialling it. */
export async function startEnvoy(
  name: string,
  baseId: number,
  opts: BootstrapOptions,
): Promise<{ envoy: Envoy; client: DemoClient }> {
  const envoy = await EnvoyProcess.create(name, baseId, opts);
  envoy.start();
  await envoy.ready();
  return { envoy, client: demoClient(envoy.listen) };
}
