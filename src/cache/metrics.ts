import { Counter, Gauge, type Registry } from 'prom-client';
import type { TierName } from './types.js';
import type { PoolCache } from './pool-cache.js';

/**
 * The cache's Prometheus series in the router's registry (DESIGN.md §8, "cache hits by tier"):
 *  - sibyl_cache_requests_total{pool, tier, result}: each tier's lookups, result hit, miss or error;
 *  - sibyl_cache_fills_total{pool, tier}, sibyl_cache_evictions{pool, tier}, sibyl_cache_entries and
 *    sibyl_cache_bytes: read from each pool cache's counters at scrape time.
 */
export class CacheMetrics {
  readonly requests: Counter<'pool' | 'tier' | 'result'>;
  private readonly caches = new Set<PoolCache>();

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
      pick: (c: ReturnType<PoolCache['tierCounters']>[number]) => number,
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

  track(cache: PoolCache): void {
    this.caches.add(cache);
  }

  untrack(cache: PoolCache): void {
    this.caches.delete(cache);
  }
}
