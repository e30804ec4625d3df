import { emptyCounts, type CallCounts } from './call-counts.js';
import { LATENCY_BOUNDS_MS, quantile } from './histogram.js';

/** A pool's calls of one gRPC method over the window, over all its endpoints. */
export interface MethodFigures {
  /** "/package.Service/Method". */
  readonly method: string;
  readonly calls: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

/** The most methods kept per pool: a backend exporting a label per request path must not grow this. */
export const MAX_METHODS_PER_POOL = 256;

/** One interval's calls per pool and gRPC method, as a reporter (router, Envoy logs) counts them. */
export type MethodCounts = Map<string, Map<string, CallCounts>>;

/**
 * Counts one call of `method` in `pool`, in latency bucket `bucket` (histogram.ts bucketOf), into
 * `into`. Methods come from clients' request paths, so a pool keeps at most MAX_METHODS_PER_POOL of
 * them (the first seen), as MethodLatencies does.
 */
export function countMethodCall(into: MethodCounts, pool: string, method: string, bucket: number): void {
  let p = into.get(pool);
  if (!p) into.set(pool, (p = new Map()));
  let m = p.get(method);
  if (!m) {
    if (p.size >= MAX_METHODS_PER_POOL) return;
    p.set(method, (m = emptyCounts()));
  }
  m.calls++;
  m.counts[bucket] = (m.counts[bucket] as number) + 1;
}

/** Who counted the calls: their clients (Envoys' access logs) or the backends themselves. */
export type MethodSource = 'client' | 'server';

interface Slice {
  at: number;
  source: MethodSource;
  calls: number;
  counts: number[];
}

/**
 * Each pool's latencies per gRPC method over a sliding window, pooled over its endpoints: the observed
 * source of per-method deadlines (src/operator/deadlines.ts). Fed with the backends' own histograms
 * per method (server-calls.ts servedBetween, from grpc_server_handling_seconds by grpc_service and
 * grpc_method), which count every client's calls, proxyless ones included, and with the attempts
 * Envoys log (telemetry/als.ts) and routers report (router/load-collector.ts). Both sides count the
 * same calls, so a method's figures are its clients' when they have any in the window, else the
 * server side's, never both added (as the fleet view does per endpoint). Time is passed in; pure otherwise. Methods past MAX_METHODS_PER_POOL are not kept
 * (the first seen are).
 */
export class MethodLatencies {
  private readonly pools = new Map<string, Map<string, Slice[]>>();

  constructor(private readonly windowMs: number) {}

  record(
    pool: string,
    methods: ReadonlyMap<string, CallCounts>,
    at: number,
    source: MethodSource = 'server',
  ): void {
    if (methods.size === 0) return;
    let p = this.pools.get(pool);
    if (!p) this.pools.set(pool, (p = new Map()));
    for (const [method, c] of methods) {
      if (c.calls <= 0) continue;
      let slices = p.get(method);
      if (!slices) {
        if (p.size >= MAX_METHODS_PER_POOL) continue;
        p.set(method, (slices = []));
      }
      slices.push({ at, source, calls: c.calls, counts: [...c.counts] });
    }
    this.prune(p, at);
  }

  /** The pool's methods with a call in the window, by name. */
  figures(pool: string, now: number): MethodFigures[] {
    const p = this.pools.get(pool);
    if (!p) return [];
    this.prune(p, now);
    const out: MethodFigures[] = [];
    for (const [method, all] of p) {
      const client = all.filter((s) => s.source === 'client');
      const slices = client.length ? client : all;
      const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
      let calls = 0;
      for (const s of slices) {
        calls += s.calls;
        for (let i = 0; i < counts.length; i++) counts[i] = (counts[i] as number) + (s.counts[i] ?? 0);
      }
      const p50Ms = quantile(counts, 0.5);
      const p99Ms = quantile(counts, 0.99);
      out.push({
        method,
        calls,
        ...(p50Ms !== undefined ? { p50Ms } : {}),
        ...(p99Ms !== undefined ? { p99Ms } : {}),
      });
    }
    return out.sort((a, b) => (a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
  }

  forget(pool: string): void {
    this.pools.delete(pool);
  }

  private prune(p: Map<string, Slice[]>, now: number): void {
    for (const [method, slices] of p) {
      const kept = slices.filter((s) => s.at > now - this.windowMs);
      if (kept.length === 0) p.delete(method);
      else if (kept.length !== slices.length) p.set(method, kept);
    }
  }
}
