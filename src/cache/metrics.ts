import { Counter, Gauge, type Registry } from 'prom-client';
import type { TierCounters, TierName } from './types.js';
import type { WarmerCounters } from './warmer.js';

/** What a scrape reads of one pool's cache (PoolCache is one): its tiers' counters and its warmer's. */
export interface CountedCache {
  readonly pool: string;
  tierCounters(): Array<TierCounters & { tier: TierName }>;
  readonly warmer: { counters(): WarmerCounters } | undefined;
}

/**
 * The cache's Prometheus series in the router's registry (docs/architecture.md, "Observability", "cache hits by tier"):
 *  - sibyl_cache_requests_total{pool, tier, result}: each tier's lookups, result hit, miss or error;
 *  - sibyl_cache_fills_total{pool, tier}, sibyl_cache_evictions{pool, tier}, sibyl_cache_entries and
 *    sibyl_cache_bytes: read from each pool cache's counters at scrape time;
 *  - the warmer's (warmer.ts), per pool: sibyl_cache_prefetched (keys refreshed or filled ahead of a
 *    client), sibyl_cache_prefetch_hits (of those, served before expiry), sibyl_cache_warm_refreshes
 *    (backend calls made), sibyl_cache_warm_budget_skips, sibyl_cache_warm_refresh_failures.
 */
export class CacheMetrics {
  readonly requests: Counter<'pool' | 'tier' | 'result'>;
  private readonly caches = new Set<CountedCache>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'sibyl_cache_requests_total',
      help: 'Cache lookups per tier: hit, miss, or error (a failing tier reads as a miss).',
      labelNames: ['pool', 'tier', 'result'],
      registers,
    });
    const caches = this.caches;
    const gauge = (
      name: string,
      help: string,
      pick: (c: ReturnType<CountedCache['tierCounters']>[number]) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'tier'],
        registers,
        collect() {
          this.reset();
          for (const pc of caches)
            for (const c of pc.tierCounters()) this.set({ pool: pc.pool, tier: c.tier }, pick(c));
        },
      });
    gauge('sibyl_cache_fills', 'Entries written to each tier since the cache was made.', (c) => c.fills);
    gauge(
      'sibyl_cache_evictions',
      'Entries evicted from each tier for space since the cache was made.',
      (c) => c.evictions,
    );
    gauge('sibyl_cache_entries', 'Entries held by each tier (0 for L2: Redis is shared).', (c) => c.entries);
    gauge('sibyl_cache_bytes', 'Bytes held by each tier (0 for L2: Redis is shared).', (c) => c.bytes);
    const warm = (name: string, help: string, pick: (c: WarmerCounters) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool'],
        registers,
        collect() {
          this.reset();
          for (const pc of caches) {
            const c = pc.warmer?.counters();
            if (c) this.set({ pool: pc.pool }, pick(c));
          }
        },
      });
    warm(
      'sibyl_cache_prefetched',
      'Keys the warmer refreshed or filled ahead of a client.',
      (c) => c.prefetched,
    );
    warm(
      'sibyl_cache_prefetch_hits',
      'Prefetched keys then served to a client before they expired (once per prefetch).',
      (c) => c.prefetchHits,
    );
    warm(
      'sibyl_cache_warm_refreshes',
      'Backend calls the warmer made to refresh hot keys.',
      (c) => c.refreshed,
    );
    warm(
      'sibyl_cache_warm_budget_skips',
      'Refreshes the warmer did not make because its budget was spent.',
      (c) => c.budgetSkips,
    );
    warm(
      'sibyl_cache_warm_refresh_failures',
      'Refresh calls that gave no OK answer.',
      (c) => c.refreshFailures,
    );
  }

  /** A lookup result callback for one pool's tiered cache. */
  forPool(pool: string): (tier: TierName, result: 'hit' | 'miss' | 'error') => void {
    const byKey = new Map<string, { inc(): void }>();
    return (tier, result) => {
      const k = `${tier}/${result}`;
      let c = byKey.get(k);
      if (!c) byKey.set(k, (c = this.requests.labels(pool, tier, result)));
      c.inc();
    };
  }

  track(cache: CountedCache): void {
    this.caches.add(cache);
  }

  untrack(cache: CountedCache): void {
    this.caches.delete(cache);
  }
}
