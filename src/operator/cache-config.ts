import type { CacheTierSpec } from '../api/cachetier.js';
import { PoolCacheSpec } from '../cache/config.js';

/**
 * The cache a pool's routers run, from the CacheTier serving it: the tier's spec without the pool
 * selection, and with the Redis URL resolved (from l2.redis.url, or read by the operator from the
 * Secret l2.redis.secretRef names), so routers never need to read Secrets. Sent as the Pool message's
 * cache_json and checked by the router with the same rules as a routes file's `pools[].cache`.
 * Fields PoolCacheSpec does not (yet) have are left out, so an older router schema never refuses it.
 */
export function effectiveCacheSpec(spec: CacheTierSpec, redisUrl: string | undefined): PoolCacheSpec {
  const known = new Set(Object.keys(PoolCacheSpec.properties));
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => {
    if (v !== undefined && known.has(k)) out[k] = v;
  };
  put('methods', spec.methods);
  put('keyHeaders', spec.keyHeaders);
  put('l1', spec.l1);
  if (spec.l2 && redisUrl !== undefined) {
    const { secretRef: _ref, url: _url, ...redis } = spec.l2.redis;
    put('l2', { ...spec.l2, redis: { ...redis, url: redisUrl } });
  }
  put('l3', spec.l3);
  put('warming', (spec as Record<string, unknown>).warming);
  return out as PoolCacheSpec;
}

/** What routers get for a pool: the effective spec as JSON and the tier's flush token. */
export interface PoolCacheWire {
  tier: string;
  cacheJson: string;
  flushToken: string;
}

/**
 * The cache config of every pool a CacheTier serves, as the control stream carries it. Tier reconciles
 * write it; FleetView reads it when it builds a pool's routing entry. `set` answers the pools whose
 * entry changed, which the caller re-publishes.
 */
export class PoolCacheConfigs {
  private readonly byPool = new Map<string, PoolCacheWire>();

  get(pool: string): PoolCacheWire | undefined {
    return this.byPool.get(pool);
  }

  /** Makes `entries` the whole of `tier`'s pools (pool keys namespace/name); returns the pools that changed. */
  set(tier: string, entries: ReadonlyMap<string, Omit<PoolCacheWire, 'tier'>>): string[] {
    const changed: string[] = [];
    for (const [pool, w] of this.byPool) {
      if (w.tier === tier && !entries.has(pool)) {
        this.byPool.delete(pool);
        changed.push(pool);
      }
    }
    for (const [pool, e] of entries) {
      const prev = this.byPool.get(pool);
      if (prev && prev.tier === tier && prev.cacheJson === e.cacheJson && prev.flushToken === e.flushToken)
        continue;
      // Another tier's entry is replaced only by the tier that now serves the pool (assignment decides).
      this.byPool.set(pool, { tier, ...e });
      changed.push(pool);
    }
    return changed;
  }

  /** Drops a tier (deleted); returns the pools that lose their cache. */
  drop(tier: string): string[] {
    return this.set(tier, new Map());
  }
}
