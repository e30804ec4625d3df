import type { EndpointLoad, LoadReport } from '../control/messages.js';
import type { Clock } from '../util/clock.js';
import { LATENCY_BOUNDS_MS, quantile } from './histogram.js';

/**
 * Who counted a report's calls. A client (a sibyl router, an Envoy through its access logs) saw its own
 * calls from outside, network and queueing included; the backend's own counters (Prometheus) saw every
 * client's calls from inside, except those that never reached it.
 */
export type ReporterSide = 'client' | 'server';

/** One reporter's interval report for one endpoint, kept for the window. */
interface Slice {
  at: number;
  router: string;
  side: ReporterSide;
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
  /**
   * Clients (routers, Envoys) that reported this endpoint, and how many of them saw it fail more than
   * not; how many of their latest reports had its breaker open (Envoys report no breaker).
   */
  routers: number;
  failingRouters: number;
  openBreakers: number;
  /**
   * What the backend itself counted over the window (its Prometheus counters), when scraped: every
   * client's calls, proxyless ones included. The figures above come from clients' reports when any
   * client reported the endpoint in the window, else from these.
   */
  served?: { calls: number; failures: number };
  concurrencyLimit?: number;
  /** Age of the newest report, ms. */
  ageMs: number;
}

/** CPU and memory utilisation an endpoint reported out of band (ORCA OpenRcaService), when. */
interface LoadFigures {
  at: number;
  cpu?: number;
  memory?: number;
}

/**
 * The fleet's view of every endpoint, from its reporters' LoadReports over a sliding window: routers,
 * Envoys (their access logs, as LoadReports) and the backends' own counters. Figures older than the
 * window are dropped, never taken as fresh; a reporter that stopped reporting stops counting.
 *
 * The two sides count the same calls, so they are never added up: an endpoint's figures come from its
 * clients' reports when it has any in the window (they see what callers see), else from the server
 * side; what the server side says of failures is kept beside them (`served`) for the fleet breakers.
 */
export class FleetTelemetry {
  private readonly slices = new Map<string, Slice[]>(); // "pool|address" → reports
  private readonly routersSeen = new Map<string, number>();
  private readonly loads = new Map<string, LoadFigures>(); // "pool|address" → ORCA out of band

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 30_000,
  ) {}

  ingest(report: LoadReport, side: ReporterSide = 'client'): void {
    const now = this.clock.now();
    if (side === 'client') this.routersSeen.set(report.routerId, now);
    for (const e of report.endpoints) {
      const key = `${e.pool}|${e.address}`;
      const list = this.slices.get(key) ?? [];
      list.push(this.slice(report.routerId, side, e, now));
      this.slices.set(key, list);
    }
  }

  /** An endpoint's own CPU and memory utilisation (ORCA out of band); the newest figure wins. */
  observeLoad(pool: string, address: string, load: { cpu?: number; memory?: number }): void {
    this.loads.set(`${pool}|${address}`, { at: this.clock.now(), ...load });
  }

  /** The endpoints of `pool` with reports in the window. */
  addresses(pool: string): string[] {
    const now = this.clock.now();
    const out: string[] = [];
    for (const [key, list] of this.slices) {
      const i = key.lastIndexOf('|');
      if (key.slice(0, i) === pool && list.some((s) => now - s.at <= this.windowMs))
        out.push(key.slice(i + 1));
    }
    return out;
  }

  /** Drops what is known of an endpoint (after a fleet breaker closes, old failures must not reopen it). */
  forget(pool: string, address: string): void {
    this.slices.delete(`${pool}|${address}`);
  }

  /** Clients (routers, Envoys) that reported within the window. */
  routers(): string[] {
    const now = this.clock.now();
    return [...this.routersSeen].filter(([, at]) => now - at <= this.windowMs).map(([r]) => r);
  }

  view(pool: string, address: string): EndpointView | undefined {
    const key = `${pool}|${address}`;
    const now = this.clock.now();
    const live = (this.slices.get(key) ?? []).filter((s) => now - s.at <= this.windowMs);
    if (live.length === 0) {
      this.slices.delete(key);
      return undefined;
    }
    this.slices.set(key, live);
    const served = live.filter((s) => s.side === 'server');
    const clients = live.filter((s) => s.side === 'client');
    const list = clients.length ? clients : served;
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
    const { cpu, memory } = this.loadOf(key, live, now);
    const byClients = clients.length > 0;
    return {
      calls,
      failures,
      errorRate: calls > 0 ? failures / calls : 0,
      ...(p50 !== undefined ? { p50Ms: p50 } : {}),
      ...(p99 !== undefined ? { p99Ms: p99 } : {}),
      ...(recentP50 !== undefined ? { recentP50Ms: recentP50 } : {}),
      inflight: latest.reduce((a, s) => a + s.inflight, 0),
      ...(cpu !== undefined ? { cpu } : {}),
      ...(memory !== undefined ? { memory } : {}),
      routers: byClients ? perRouter.size : 0,
      failingRouters: byClients
        ? [...perRouter.values()].filter((r) => r.calls > 0 && r.failures * 2 > r.calls).length
        : 0,
      openBreakers: latest.filter((s) => s.breaker === 'Open').length,
      ...(served.length
        ? {
            served: {
              calls: served.reduce((a, s) => a + s.calls, 0),
              failures: served.reduce((a, s) => a + s.failures, 0),
            },
          }
        : {}),
      ...(limits.length ? { concurrencyLimit: Math.min(...limits) } : {}),
      ageMs: now - newest.at,
    };
  }

  /** CPU and memory: the newest of the reports' ORCA figures and the endpoint's own out-of-band ones. */
  private loadOf(key: string, live: readonly Slice[], now: number): { cpu?: number; memory?: number } {
    let best: { at: number; cpu?: number; memory?: number } | undefined;
    for (const s of live) if (s.cpu !== undefined && (!best || s.at >= best.at)) best = s;
    const oob = this.loads.get(key);
    if (oob && now - oob.at > this.windowMs) this.loads.delete(key);
    else if (oob && (!best || oob.at >= best.at)) best = oob;
    return {
      ...(best?.cpu !== undefined ? { cpu: best.cpu } : {}),
      ...(best?.memory !== undefined ? { memory: best.memory } : {}),
    };
  }

  private slice(router: string, side: ReporterSide, e: EndpointLoad, at: number): Slice {
    const failures = Object.values(e.errors ?? {}).reduce((a, b) => a + Number(b), 0);
    const sameBounds = e.latencyBoundsMs.length === LATENCY_BOUNDS_MS.length;
    return {
      at,
      router,
      side,
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
 * Fleet-wide breakers (docs/architecture.md, "Balancing, breakers and limits"): when an endpoint fails
 * across the fleet, the operator opens its breaker for every router (and data plane) for
 * recoveryTimeout; then it closes it and forgets the old failures, and the routers' own half-open
 * probing decides. Across the fleet means either
 *   - on at least two clients (routers, Envoys) and at least half of those that call it, with at least
 *     failureThreshold failures: a single client's bad luck (its own path to the endpoint) stays that
 *     client's business, as its own breaker or outlier detection handles it; or
 *   - by the endpoint's own count (its Prometheus counters), more than half of the calls it served in
 *     the window failed, at least failureThreshold of them: that count already covers every client,
 *     and it is the only evidence there is for stock proxyless clients, which report nothing and have
 *     no breaker of their own.
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
    const byClients =
      v.failingRouters >= 2 && v.failingRouters * 2 >= v.routers && v.failures >= cfg.failureThreshold;
    const s = v.served;
    const byServer = s !== undefined && s.failures * 2 > s.calls && s.failures >= cfg.failureThreshold;
    if (!byClients && !byServer) return undefined;
    this.open.set(key, now);
    const why = byClients
      ? `failed on ${v.failingRouters} of ${v.routers} routers (${v.failures} of ${v.calls} calls in the window)`
      : `failed ${s?.failures} of the ${s?.calls} calls it served in the window (its own counters)`;
    return {
      pool,
      address,
      to: 'Open',
      message: `${address} ${why}: breaker opened for every router for ${Math.round(cfg.recoveryTimeoutMs / 1000)}s`,
    };
  }
}
