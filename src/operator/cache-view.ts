import type { CacheCounters } from '../control/messages.js';

/** A CacheTier's figures from its routers' reports (the status fields of the same names). */
export interface TierFigures {
  /** Share of lookups answered by each tier, and by any, over the window; absent with no lookups. */
  hitRatio?: { l1: number; l2: number; l3: number; overall: number };
  /** e.g. "87% (L1 71%, L2 16%)", for the `kubectl get ct` column. */
  hitRatioSummary?: string;
  /** Entries and bytes the routers hold in L1 and L3 (summed over routers; L2 is Redis's, not counted). */
  entries: number;
  bytes: number;
  /** Keys the routers' warmers prefetched (cumulative, summed over routers). */
  warmedKeys: number;
  /** Prefetched keys later hit ÷ keys prefetched (cumulative, summed); absent before any prefetch. */
  prefetchAccuracy?: number;
  /** Routers that reported on any of the pools within the freshness limit. */
  routers: number;
}

interface Step {
  atMs: number;
  hits: number;
  misses: number;
}

interface Series {
  last: CacheCounters;
  seenMs: number;
  steps: Step[];
}

export interface CacheViewOptions {
  /** Hit ratios cover the lookups of this long (default 60 s). */
  windowMs?: number;
  /** A router not heard from in this long no longer counts (default 30 s). */
  staleMs?: number;
}

/**
 * The fleet's cache counters, per router, pool and tier. Routers send cumulative counters (since their
 * PoolCache was made), so each report is differenced against the router's previous one; a counter
 * lower than before means the router restarted or rebuilt its cache, and the new value is then the
 * increase (Prometheus' rate() treats counter resets the same way). Counters in a router's first
 * report are only a baseline, so an operator that restarts does not count a router's whole history
 * as recent; a cache that appears on a router already reporting (a new tier, a changed spec) is new,
 * and its counters count in full. Pure: the caller passes the time.
 */
export class CacheView {
  private readonly series = new Map<string, Series>();
  /** Routers heard from (any report, with caches or not) → when last. */
  private readonly routers = new Map<string, number>();
  private readonly windowMs: number;
  private readonly staleMs: number;

  constructor(o: CacheViewOptions = {}) {
    this.windowMs = o.windowMs ?? 60_000;
    this.staleMs = o.staleMs ?? 30_000;
  }

  /** One router's report (call it for every report, also those with no caches). */
  ingest(routerId: string, counters: readonly CacheCounters[], nowMs: number): void {
    const known = this.routers.has(routerId);
    this.routers.set(routerId, nowMs);
    for (const c of counters) {
      const key = `${routerId}\u0000${c.cache}\u0000${c.tier}`;
      const s = this.series.get(key);
      if (!s) {
        const steps =
          known && (c.hits > 0 || c.misses > 0) ? [{ atMs: nowMs, hits: c.hits, misses: c.misses }] : [];
        this.series.set(key, { last: c, seenMs: nowMs, steps });
        continue;
      }
      const reset = c.hits < s.last.hits || c.misses < s.last.misses;
      const hits = reset ? c.hits : c.hits - s.last.hits;
      const misses = reset ? c.misses : c.misses - s.last.misses;
      if (hits > 0 || misses > 0) s.steps.push({ atMs: nowMs, hits, misses });
      s.last = c;
      s.seenMs = nowMs;
    }
    this.prune(nowMs);
  }

  /** Drops what is older than the window, and routers gone for longer than it. */
  private prune(nowMs: number): void {
    const from = nowMs - this.windowMs;
    const keep = Math.max(this.windowMs, this.staleMs);
    for (const [r, at] of this.routers) if (nowMs - at > keep) this.routers.delete(r);
    for (const [k, s] of this.series) {
      if (nowMs - s.seenMs > keep) this.series.delete(k);
      else if (s.steps.length && (s.steps[0] as Step).atMs <= from)
        s.steps = s.steps.filter((x) => x.atMs > from);
    }
  }

  /** The figures of a tier serving `pools` (router pool names, namespace/name); undefined with no reports. */
  figures(pools: readonly string[], nowMs: number): TierFigures | undefined {
    const wanted = new Set(pools);
    const from = nowMs - this.windowMs;
    const sum = { l1: [0, 0], l2: [0, 0], l3: [0, 0] } as Record<string, [number, number]>;
    const routers = new Set<string>();
    let entries = 0;
    let bytes = 0;
    let prefetched = 0;
    let prefetchHits = 0;
    let any = false;
    for (const [k, s] of this.series) {
      const [router, pool] = k.split('\u0000') as [string, string];
      if (!wanted.has(pool) || nowMs - s.seenMs > this.staleMs) continue;
      any = true;
      routers.add(router);
      const t = s.last.tier;
      const acc = sum[t];
      if (acc) {
        for (const st of s.steps) {
          if (st.atMs <= from) continue;
          acc[0] += st.hits;
          acc[1] += st.misses;
        }
      }
      if (t !== 'l2') {
        entries += s.last.entries;
        bytes += s.last.bytes;
      }
      prefetched += s.last.prefetched;
      prefetchHits += s.last.prefetchHits;
    }
    if (!any) return undefined;
    const out: TierFigures = { entries, bytes, warmedKeys: prefetched, routers: routers.size };
    // Every lookup starts at L1, so L1's hits plus misses are the lookups; a lower tier is asked only
    // on a miss above it, and its share is of all lookups (the three add up to the overall ratio).
    const [h1, m1] = sum.l1 as [number, number];
    const lookups = h1 + m1;
    if (lookups > 0) {
      const h2 = (sum.l2 as [number, number])[0];
      const h3 = (sum.l3 as [number, number])[0];
      const r = (x: number) => Math.round((x / lookups) * 1e4) / 1e4;
      out.hitRatio = { l1: r(h1), l2: r(h2), l3: r(h3), overall: r(h1 + h2 + h3) };
      out.hitRatioSummary = summary(out.hitRatio);
    }
    if (prefetched > 0) out.prefetchAccuracy = Math.round((prefetchHits / prefetched) * 1e4) / 1e4;
    return out;
  }
}

/** "87% (L1 71%, L2 16%)": the overall ratio, then each tier that answered any lookups. */
export function summary(h: { l1: number; l2: number; l3: number; overall: number }): string {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const parts = (['l1', 'l2', 'l3'] as const)
    .filter((t) => h[t] > 0)
    .map((t) => `${t.toUpperCase()} ${pct(h[t])}`);
  return parts.length ? `${pct(h.overall)} (${parts.join(', ')})` : pct(h.overall);
}
