import type { EndpointLoad, LoadReport } from '../control/messages.js';
import type { Clock } from '../util/clock.js';
import { LATENCY_BOUNDS_MS, quantile } from './histogram.js';

/** One router's interval report for one endpoint, kept for the window. */
interface Slice {
  at: number;
  router: string;
  calls: number;
  failures: number;
  counts: number[];
  inflight: number;
  cpu?: number;
  memory?: number;
  breaker: string;
  limit: number;
}

/** What the fleet saw of an endpoint over the window. */
export interface EndpointView {
  calls: number;
  failures: number;
  errorRate: number;
  p50Ms?: number;
  p99Ms?: number;
  /**
   * p50 over each router's latest report only (the last interval), when those had calls: what the
   * endpoint does now, where p50Ms also remembers the rest of the window (a recovered endpoint keeps
   * a slow p50Ms for up to the window's length).
   */
  recentP50Ms?: number;
  meanMs?: number;
  inflight: number;
  cpu?: number;
  memory?: number;
  /** Routers that reported this endpoint, and how many of them saw it fail more than not. */
  routers: number;
  failingRouters: number;
  openBreakers: number;
  concurrencyLimit?: number;
  /** Age of the newest report, ms. */
  ageMs: number;
}

/**
 * The fleet's view of every endpoint, from routers' LoadReports over a sliding window. Figures older
 * than the window are dropped, never taken as fresh; a router that stopped reporting stops counting.
 */
export class FleetTelemetry {
  private readonly slices = new Map<string, Slice[]>(); // "pool|address" → reports
  private readonly routersSeen = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 30_000,
  ) {}

  ingest(report: LoadReport): void {
    const now = this.clock.now();
    this.routersSeen.set(report.routerId, now);
    for (const e of report.endpoints) {
      const key = `${e.pool}|${e.address}`;
      const list = this.slices.get(key) ?? [];
      list.push(this.slice(report.routerId, e, now));
      this.slices.set(key, list);
    }
  }

  /** Drops what is known of an endpoint (after a fleet breaker closes, old failures must not reopen it). */
  forget(pool: string, address: string): void {
    this.slices.delete(`${pool}|${address}`);
  }

  /** Routers that reported within the window. */
  routers(): string[] {
    const now = this.clock.now();
    return [...this.routersSeen].filter(([, at]) => now - at <= this.windowMs).map(([r]) => r);
  }

  view(pool: string, address: string): EndpointView | undefined {
    const key = `${pool}|${address}`;
    const now = this.clock.now();
    const list = (this.slices.get(key) ?? []).filter((s) => now - s.at <= this.windowMs);
    if (list.length === 0) {
      this.slices.delete(key);
      return undefined;
    }
    this.slices.set(key, list);
    const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
    let calls = 0;
    let failures = 0;
    const perRouter = new Map<string, { calls: number; failures: number; last: Slice }>();
    for (const s of list) {
      calls += s.calls;
      failures += s.failures;
      s.counts.forEach((c, i) => (counts[i] = (counts[i] as number) + c));
      const r = perRouter.get(s.router) ?? { calls: 0, failures: 0, last: s };
      r.calls += s.calls;
      r.failures += s.failures;
      if (s.at >= r.last.at) r.last = s;
      perRouter.set(s.router, r);
    }
    const latest = [...perRouter.values()].map((r) => r.last);
    const newest = latest.reduce((a, b) => (b.at > a.at ? b : a));
    const p50 = quantile(counts, 0.5);
    const p99 = quantile(counts, 0.99);
    const recentCounts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
    for (const s of latest) s.counts.forEach((c, i) => (recentCounts[i] = (recentCounts[i] as number) + c));
    const recentP50 = quantile(recentCounts, 0.5);
    const limits = latest.map((s) => s.limit).filter((l) => l > 0);
    return {
      calls,
      failures,
      errorRate: calls > 0 ? failures / calls : 0,
      ...(p50 !== undefined ? { p50Ms: p50 } : {}),
      ...(p99 !== undefined ? { p99Ms: p99 } : {}),
      ...(recentP50 !== undefined ? { recentP50Ms: recentP50 } : {}),
      inflight: latest.reduce((a, s) => a + s.inflight, 0),
      ...(newest.cpu !== undefined ? { cpu: newest.cpu } : {}),
      ...(newest.memory !== undefined ? { memory: newest.memory } : {}),
      routers: perRouter.size,
      failingRouters: [...perRouter.values()].filter((r) => r.calls > 0 && r.failures * 2 > r.calls).length,
      openBreakers: latest.filter((s) => s.breaker === 'Open').length,
      ...(limits.length ? { concurrencyLimit: Math.min(...limits) } : {}),
      ageMs: now - newest.at,
    };
  }

  private slice(router: string, e: EndpointLoad, at: number): Slice {
    const failures = Object.values(e.errors ?? {}).reduce((a, b) => a + Number(b), 0);
    const sameBounds = e.latencyBoundsMs.length === LATENCY_BOUNDS_MS.length;
    return {
      at,
      router,
      calls: e.calls,
      failures,
      counts: sameBounds ? e.latencyCounts.map(Number) : new Array<number>(LATENCY_BOUNDS_MS.length).fill(0),
      inflight: e.inflight,
      ...(e.orcaCpu !== undefined ? { cpu: e.orcaCpu } : {}),
      ...(e.orcaMemory !== undefined ? { memory: e.orcaMemory } : {}),
      breaker: e.breaker,
      limit: e.concurrencyLimit,
    };
  }
}

export interface FleetBreakerTransition {
  pool: string;
  address: string;
  to: 'Open' | 'Closed';
  message: string;
}

/**
 * Fleet-wide breakers (docs/architecture.md, "Balancing, breakers and limits"): when an endpoint fails across the fleet — on at least two
 * routers and on at least half of those that call it, with at least failureThreshold failures — the
 * operator opens its breaker for every router for recoveryTimeout; then it closes it and forgets the
 * old failures, and the routers' own half-open probing decides. A single router's bad luck stays that
 * router's business.
 */
export class FleetBreakers {
  private readonly open = new Map<string, number>(); // key → opened at

  constructor(
    private readonly telemetry: FleetTelemetry,
    private readonly clock: Clock,
  ) {}

  isOpen(pool: string, address: string): boolean {
    return this.open.has(`${pool}|${address}`);
  }

  /** Re-evaluates one endpoint; returns a transition when its fleet breaker changed. */
  evaluate(
    pool: string,
    address: string,
    cfg: { failureThreshold: number; recoveryTimeoutMs: number },
  ): FleetBreakerTransition | undefined {
    const key = `${pool}|${address}`;
    const now = this.clock.now();
    const openedAt = this.open.get(key);
    if (openedAt !== undefined) {
      if (now - openedAt < cfg.recoveryTimeoutMs) return undefined;
      this.open.delete(key);
      this.telemetry.forget(pool, address);
      return {
        pool,
        address,
        to: 'Closed',
        message: `${address}: fleet breaker closed after ${Math.round(cfg.recoveryTimeoutMs / 1000)}s; routers probe it again`,
      };
    }
    const v = this.telemetry.view(pool, address);
    if (!v) return undefined;
    const failing =
      v.failingRouters >= 2 && v.failingRouters * 2 >= v.routers && v.failures >= cfg.failureThreshold;
    if (!failing) return undefined;
    this.open.set(key, now);
    return {
      pool,
      address,
      to: 'Open',
      message: `${address} failed on ${v.failingRouters} of ${v.routers} routers (${v.failures} of ${v.calls} calls in the window): breaker opened for every router for ${Math.round(cfg.recoveryTimeoutMs / 1000)}s`,
    };
  }
}
