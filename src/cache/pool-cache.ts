import type { IncomingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import type { CacheCounters } from '../control/messages.js';
import { cacheSettings, type CacheSettings, type PoolCacheSpec } from './config.js';
import { cacheKey } from './key.js';
import { MemoryStore } from './l1-memory.js';
import { RedisStore } from './l2-redis.js';
import { DiskStore } from './l3-disk.js';
import type { CacheMetrics } from './metrics.js';
import { TieredCache } from './tiered.js';
import type { CacheStore, TierCounters, TierName } from './types.js';

export interface PoolCacheDeps {
  log: Logger;
  metrics?: CacheMetrics;
  /** Wall-clock ms (epoch) for entry expiry; Date.now when absent. */
  wallNow?: () => number;
  /** Monotonic ms (L1 TTLs, the L2 breaker). */
  now?: () => number;
}

/** Where a pool's entries live in Redis (shared by every router of the pool; a flush deletes them). */
export function l2KeyPrefix(pool: string): string {
  return `sibyl:cache:${pool}:`;
}

/** Largest response body stored or shared (bigger ones pass through uncached). */
export const MAX_ENTRY_BODY_BYTES = 8 * 1024 * 1024;

/**
 * One pool's cache: its settings (which methods, their TTLs, the key headers) and its tiers (L1
 * always; L2 and L3 when configured) behind one TieredCache. Made by PoolState from the pool's
 * `cache` spec and replaced whole when that spec changes.
 */
export class PoolCache {
  readonly settings: CacheSettings;
  readonly tiered: TieredCache;
  readonly l2: RedisStore | undefined;
  readonly l3: DiskStore | undefined;

  constructor(
    readonly pool: string,
    spec: PoolCacheSpec,
    private readonly deps: PoolCacheDeps,
  ) {
    const s = (this.settings = cacheSettings(spec));
    const log = deps.log.child({ pool, component: 'cache' });
    const stores: CacheStore[] = [new MemoryStore({ ...s.l1, now: deps.now })];
    if (s.l2) {
      this.l2 = new RedisStore({ ...s.l2, keyPrefix: l2KeyPrefix(pool), now: deps.now, log });
      stores.push(this.l2);
    }
    if (s.l3) {
      this.l3 = new DiskStore({ ...s.l3, wallNow: deps.wallNow, log });
      stores.push(this.l3);
    }
    this.tiered = new TieredCache(stores, {
      wallNow: deps.wallNow,
      log,
      onLookup: deps.metrics?.forPool(pool),
    });
    deps.metrics?.track(this);
  }

  /** The TTL of a cached method, ms; undefined when `method` is not cached. */
  ttlFor(method: string): number | undefined {
    return this.settings.methods.get(method);
  }

  key(method: string, body: Buffer, headers: IncomingHttpHeaders): string {
    return cacheKey(method, body, headers, this.settings.keyHeaders);
  }

  tierCounters(): Array<TierCounters & { tier: TierName }> {
    return this.tiered.counters();
  }

  /** Counters per tier in the LoadReport's shape (prefetch figures stay 0 until warming exists). */
  counters(): CacheCounters[] {
    return this.tierCounters().map((c) => ({
      tier: c.tier,
      cache: this.pool,
      hits: c.hits,
      misses: c.misses,
      fills: c.fills,
      evictions: c.evictions,
      bytes: c.bytes,
      entries: c.entries,
      prefetched: 0,
      prefetchHits: 0,
    }));
  }

  /**
   * Drops the pool's cache everywhere this router can reach: L1 and L3 emptied, and every L2 key of
   * the pool (prefix `sibyl:cache:<pool>:`, shared with the other routers) deleted. Never rejects: a
   * tier that fails (Redis down) counts an error in its counters and is logged.
   */
  async flush(): Promise<void> {
    await this.tiered.clear();
  }

  async close(): Promise<void> {
    this.deps.metrics?.untrack(this);
    await this.tiered.close();
  }
}
