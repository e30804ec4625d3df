import * as grpc from '@grpc/grpc-js';
import { demoClientConstructor } from '../backend/proto.js';
import type { Random } from '../../util/clock.js';
import { quantile } from '../sim/metrics.js';
import type { Zipf } from '../../util/zipf.js';

export interface PhaseResult {
  name: string;
  calls: number;
  ok: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  byBackend: Record<string, number>;
}

interface Sample {
  ms: number;
  ok: boolean;
  backend: string;
}

/** Where the traffic goes: gRPC targets (an Envoy, routers, or xds:///NAME.NAMESPACE), with channel options. */
export interface TrafficPath {
  targets: string[];
  options?: grpc.ClientOptions;
}

/**
 * Open-loop traffic (a Poisson stream at `rps`, spread over the path's targets) of Echo calls with a
 * deadline, recorded per phase. Open loop, so a slow backend cannot slow the arrival of new calls
 * and hide its own tail (the "coordinated omission" trap). Each request names a key drawn from
 * `keys` (Zipf popularity, as real lookups have), so a cache in front of the pool has something to do.
 */
export class Traffic {
  private clients: grpc.Client[] = [];
  private readonly opened: grpc.Client[] = [];
  private samples: Sample[] = [];
  private timer?: NodeJS.Timeout;
  private inflight = 0;
  private sent = 0;
  onTick?: (s: { sent: number; inflight: number; recent: Sample[] }) => void;

  constructor(
    path: TrafficPath,
    private readonly rps: number,
    private readonly deadlineMs: number,
    private readonly random: Random,
    private readonly keys: Zipf,
  ) {
    this.to(path);
  }

  /**
   * Sends new calls along `path` from now on. The channels of earlier paths stay open, idle, until
   * stop(): calls in flight finish there, and an xDS client stays connected to the operator, so
   * `kubectl describe bp` at the end still lists it. The caller discards the samples that straddle.
   */
  to(path: TrafficPath): void {
    const Ctor = demoClientConstructor();
    this.clients = path.targets.map((t) => new Ctor(t, grpc.credentials.createInsecure(), path.options));
    this.opened.push(...this.clients);
  }

  /** Resolves once every channel of the current path is connected (an xds: channel has its config). */
  ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    return Promise.all(
      this.clients.map(
        (c) =>
          new Promise<void>((resolve, reject) =>
            c.waitForReady(deadline, (e) => (e ? reject(e) : resolve())),
          ),
      ),
    ).then(() => undefined);
  }

  start(): void {
    let last = performance.now();
    let owed = 0;
    this.timer = setInterval(() => {
      const now = performance.now();
      owed += ((now - last) / 1000) * this.rps;
      last = now;
      while (owed >= 1) {
        owed -= 1;
        this.call();
      }
      this.onTick?.({ sent: this.sent, inflight: this.inflight, recent: this.samples.slice(-200) });
    }, 5);
  }

  /** Takes the samples recorded since the last call as one phase. */
  phase(name: string): PhaseResult {
    const s = this.samples;
    this.samples = [];
    const all = s.map((x) => (x.ok ? x.ms : this.deadlineMs)).sort((a, b) => a - b);
    const byBackend: Record<string, number> = {};
    for (const x of s) if (x.ok) byBackend[x.backend] = (byBackend[x.backend] ?? 0) + 1;
    return {
      name,
      calls: s.length,
      ok: s.filter((x) => x.ok).length,
      errors: s.filter((x) => !x.ok).length,
      p50Ms: quantile(all, 0.5),
      p99Ms: quantile(all, 0.99),
      meanMs: all.reduce((a, b) => a + b, 0) / Math.max(1, all.length),
      byBackend,
    };
  }

  discard(): void {
    this.samples = [];
  }

  stop(): void {
    clearInterval(this.timer);
    for (const c of this.opened) c.close();
  }

  private call(): void {
    const c = this.clients[Math.floor(this.random() * this.clients.length)] as grpc.Client & {
      echo(
        req: object,
        md: grpc.Metadata,
        opts: grpc.CallOptions,
        cb: (e: grpc.ServiceError | null, r?: { servedBy?: string }) => void,
      ): grpc.ClientUnaryCall;
    };
    const t0 = performance.now();
    this.inflight++;
    this.sent++;
    const call = c.echo(
      { payload: Buffer.from(`key-${this.keys.draw(this.random)}`.padEnd(64, '.')) },
      new grpc.Metadata(),
      { deadline: Date.now() + this.deadlineMs },
      (err, res) => {
        this.inflight--;
        void res;
        this.samples.push({ ms: performance.now() - t0, ok: !err, backend: backend ?? '?' });
      },
    );
    let backend: string | undefined;
    call.on('metadata', (md: grpc.Metadata) => {
      backend = String(md.get('x-sibyl-backend')[0] ?? '');
    });
  }
}
