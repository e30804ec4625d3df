import type { WireEndpoint, WirePool } from '../control/messages.js';
import { roundTo } from '../util/round.js';
import type { AssessedEndpoint, PoolView } from './pool-view.js';

/** The cache a pool's routers run, from the CacheTier serving it (cache-config.ts). */
export interface PoolCacheEntry {
  cacheJson: string;
  flushToken: string;
}

/** An endpoint as the control stream carries it to routers (proto/sibyl/control/v1). */
export function wireEndpoint(a: AssessedEndpoint): WireEndpoint {
  const { endpoint: e, view: v, prediction: p } = a;
  return {
    address: e.address,
    pod: e.pod ?? '',
    ready: e.ready,
    forceOpen: a.forceOpen,
    figuresAgeMs: v ? Math.round(v.ageMs) : 0,
    ...(v ? { errorRate: roundTo(v.errorRate, 4) } : {}),
    ...(v?.cpu !== undefined ? { cpu: v.cpu } : {}),
    ...(v?.memory !== undefined ? { memory: v.memory } : {}),
    ...(p ? { predictedLatencyMs: roundTo(p.latencyMs, 3) } : {}),
    ...(p?.p90Ms !== undefined ? { predictedP90Ms: roundTo(p.p90Ms, 3) } : {}),
    ...(a.weight !== undefined ? { weight: a.weight } : {}),
  };
}

/**
 * A pool's routing entry: the raw spec (routers resolve its defaults themselves), the policy in force,
 * the endpoints the fleet assessed (none while they cannot be resolved) and the pool's cache.
 */
export function wirePool(view: PoolView, cache: PoolCacheEntry | undefined): WirePool {
  return {
    name: view.key,
    specJson: JSON.stringify(view.pool.spec),
    endpoints: (view.fleet?.endpoints ?? []).map(wireEndpoint),
    policy: view.policy,
    ...(cache ? { cacheJson: cache.cacheJson, cacheFlushToken: cache.flushToken } : {}),
  };
}
