import type { IncomingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import type { CacheCounters } from '../control/messages.js';
import { cacheSettings, type CacheSettings, type PoolCacheSpec } from './config.js';
import { cacheKey } from './key.js';
import { MemoryStore } from './l1-memory.js';
import { RedisStore } from './l2-redis.js';
import { DiskStore } from './l3-disk.js';
import { join } from 'node:path';
import type { CacheMetrics } from './metrics.js';
import { HotSet } from './sketch.js';
import { TieredCache, type Answer, type Loaded } from './tiered.js';
import type { CacheMode, CacheStore, HeaderFields, TierCounters, TierName } from './types.js';
import { Warmer, type WarmFetch, type WarmRequest } from './warmer.js';
import { systemTimers, type Timers } from '../util/timers.js';

export interface PoolCacheDeps {
  log: Logger;
  metrics?: CacheMetrics;
  /** Wall-clock ms (epoch) for entry expiry; Date.now when absent. */
  wallNow?: () => number;
  /** Monotonic ms (L1 TTLs, the L2 breaker, the sketch's decay, the warmer's budget). */
  now?: () => number;
  /** The warmer's ticks; real timers when absent. */
  timers?: Timers;
  /** How the warmer makes a call again (the router's own path); without it, warming only fills from L2/L3. */
  fetch?: WarmFetch;
}

/** Where a pool's entries live in Redis (shared by every router of the pool; a flush deletes them). */
export function l2KeyPrefix(pool: string): string {
  return `sibyl:cache:${pool}:`;
}

/** Request headers a warm refresh carries besides the key headers (they shape the answer or its route). */
const WARM_HEADERS = [':authority', 'content-type', 'grpc-encoding', 'grpc-accept-encoding'] as const;

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
  readonly l1: MemoryStore;
  readonly l2: RedisStore | undefined;
  readonly l3: DiskStore | undefined;
  /** The decayed frequency sketch and its top-K (with warming), also L1's TinyLFU admission. */
  readonly hot: HotSet | undefined;
  readonly warmer: Warmer | undefined;

  constructor(
    readonly pool: string,
    spec: PoolCacheSpec,
    private readonly deps: PoolCacheDeps,
  ) {
    const s = (this.settings = cacheSettings(spec));
    const log = deps.log.child({ pool, component: 'cache' });
    const now = deps.now ?? (() => performance.now());
    const w = s.warming;
    if (w.enabled) {
      // Counters enough to tell L1's candidates apart: several per entry (TinyLFU sizes its sketch to
      // the cache), at least 2^14 (256 KiB) so a small cache still ranks a large key space, at most 2^18.
      const width = Math.min(1 << 18, Math.max(1 << 14, 8 * s.l1.maxEntries, 4 * w.topK));
      this.hot = new HotSet({ width, topK: w.topK, halfLifeMs: w.windowMs, now });
    }
    const hot = this.hot;
    this.l1 = new MemoryStore({ ...s.l1, now: deps.now, frequency: hot && ((k) => hot.estimate(k)) });
    const stores: CacheStore[] = [this.l1];
    if (s.l2) {
      this.l2 = new RedisStore({ ...s.l2, keyPrefix: l2KeyPrefix(pool), now: deps.now, log });
      stores.push(this.l2);
    }
    if (s.l3) {
      // A folder of its own under the tier's path: one tier may serve several pools, and each store
      // indexes, bounds and evicts the files of its folder as its own.
      this.l3 = new DiskStore({ ...s.l3, path: join(s.l3.path, l3Folder(pool)), wallNow: deps.wallNow, log });
      stores.push(this.l3);
    }
    this.tiered = new TieredCache(stores, {
      wallNow: deps.wallNow,
      log,
      onLookup: deps.metrics?.forPool(pool),
    });
    if (hot) {
      this.warmer = new Warmer({
        settings: w,
        hot,
        tiered: this.tiered,
        l1: this.l1,
        ttlFor: (m) => this.ttlFor(m),
        shortestTtlMs: Math.min(...s.methods.values()),
        fetch: deps.fetch,
        hotList: this.l2,
        clock: { now },
        wallNow: deps.wallNow ?? Date.now,
        timers: deps.timers ?? systemTimers,
        log,
      });
    }
    deps.metrics?.track(this);
  }

  /**
   * A call's cache step (the router's pipeline): its key, counted by the warmer when read normally,
   * then the tiered cache's getOrLoad around `load` (the call to a backend). A hit tells the warmer
   * (prefetch accuracy).
   */
  async getOrLoad(
    method: string,
    body: Buffer,
    headers: IncomingHttpHeaders,
    mode: CacheMode,
    ttlMs: number,
    load: () => Promise<Answer | undefined>,
    gone?: Promise<unknown>,
  ): Promise<Loaded> {
    const key = this.key(method, body, headers);
    if (mode === 'normal') this.warmer?.observe(key, () => this.warmRequest(method, body, headers));
    const r = await this.tiered.getOrLoad(key, ttlMs, load, mode, gone);
    if (r.from === 'hit') this.warmer?.served(key);
    return r;
  }

  /** What the warmer keeps to make this call again. */
  private warmRequest(method: string, body: Buffer, headers: IncomingHttpHeaders): WarmRequest {
    const kept: HeaderFields = {};
    for (const name of [...WARM_HEADERS, ...this.settings.keyHeaders]) {
      const v = headers[name];
      if (v !== undefined) kept[name] = v;
    }
    return { method, body, headers: kept };
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

  /**
   * Counters per tier in the LoadReport's shape. The warmer's prefetched and prefetchHits are on the L1
   * row only (the tier it fills; the operator sums rows), 0 on the others.
   */
  counters(): CacheCounters[] {
    const w = this.warmer?.counters();
    return this.tierCounters().map((c) => ({
      tier: c.tier,
      cache: this.pool,
      hits: c.hits,
      misses: c.misses,
      fills: c.fills,
      evictions: c.evictions,
      bytes: c.bytes,
      entries: c.entries,
      prefetched: c.tier === 'l1' ? (w?.prefetched ?? 0) : 0,
      prefetchHits: c.tier === 'l1' ? (w?.prefetchHits ?? 0) : 0,
    }));
  }

  /**
   * Drops the pool's cache everywhere this router can reach: L1 and L3 emptied, and every L2 key of
   * the pool (prefix `sibyl:cache:<pool>:`, shared with the other routers) deleted. Never rejects: a
   * tier that fails (Redis down) counts an error in its counters and is logged.
   */
  async flush(): Promise<void> {
    await this.tiered.clear();
    this.warmer?.reset();
  }

  async close(): Promise<void> {
    this.warmer?.close();
    this.deps.metrics?.untrack(this);
    await this.tiered.close();
  }
}

/** A pool's L3 folder name: its name (namespace/name from the operator) made one safe path segment. */
export function l3Folder(pool: string): string {
  return encodeURIComponent(pool).replace(/^\.+/, (dots) => '%2E'.repeat(dots.length));
}
