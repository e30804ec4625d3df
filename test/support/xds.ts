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
import type { XdsEndpointInput, XdsPoolInput } from '../../src/xds/types.js';
import { quiet } from './grpc.js';
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

/** A spec that sets every section a data plane is programmed from (retries on three codes, one unknown to xDS). */
export const EVERY_POLICY = {
  timeout: '3s',
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
        if (line.op === 'call') this.traced.push(line as unknown as TracedCall);
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
