import type { ReconcileResult } from '../kube/workqueue.js';
import { splitKey } from '../kube/store.js';
import type { OperatorContext, PoolObject } from './context.js';
import { commitStatus } from './context.js';
import { resolveService, resolveStatic, type Resolution } from './endpoints.js';
import { buildPoolStatus, type EndpointFigures } from './pool-status.js';
import type { ModelStatus } from './model-manager.js';
import type { ActiveAnomaly } from '../anomaly/monitor.js';

/** Per-endpoint figures and routing facts that later stages (telemetry, model, control stream) supply. */
export interface PoolFiguresSource {
  figures(namespace: string, name: string): ReadonlyMap<string, EndpointFigures> | undefined;
  policyInForce?(namespace: string, name: string): string | undefined;
  routers?(namespace: string, name: string): number | undefined;
  /** Recompute figures and the routing entry for the pool (undefined: it is gone). */
  publish?(key: string, pool: PoolObject | undefined, resolution: Resolution | undefined): void;
  /** Anomalies active on the pool, for the Degraded condition. */
  anomalies?(key: string): ActiveAnomaly[];
  /** The latency model in force, for status.model and the ModelReady condition. */
  model?(): ModelStatus;
  /** How soon figures should be refreshed even if nothing else happens (ms). */
  refreshMs?(pool: PoolObject): number | undefined;
}

/** Resolves the pool's endpoints from the informers' caches (no API calls). */
export function resolvePool(ctx: OperatorContext, pool: PoolObject): Resolution {
  const ns = pool.metadata.namespace ?? '';
  if (!pool.spec.service) return resolveStatic(pool.spec);
  const svc = ctx.services.store.get(`${ns}/${pool.spec.service.name}`);
  const slices = ctx.slices.store.byIndex('service', `${ns}/${pool.spec.service.name}`);
  const r = resolveService(pool.spec, ns, svc, slices);
  if (!r.ok) return r;
  // A pod on its way out may linger in a slice as ready for a moment; trust the pod.
  for (const e of r.endpoints) {
    if (e.pod && ctx.pods.store.get(`${ns}/${e.pod}`)?.metadata?.deletionTimestamp) e.ready = false;
  }
  return r;
}

/**
 * Level-based and idempotent: read the pool and the world from caches, rebuild status, let the
 * StatusWriter decide whether to write, and record the events the change calls for once it is written.
 */
export async function reconcilePool(
  ctx: OperatorContext,
  key: string,
  source?: PoolFiguresSource,
): Promise<ReconcileResult> {
  const pool = ctx.pools.store.get(key);
  const { namespace, name } = splitKey(key);
  if (!pool || pool.metadata.deletionTimestamp) {
    ctx.poolStatus.forget(namespace, name);
    source?.publish?.(key, undefined, undefined);
    return; // NotFound is done.
  }
  const tierRef = pool.spec.cacheTierRef?.name;
  const resolution = resolvePool(ctx, pool);
  source?.publish?.(key, pool, resolution);
  const world = {
    pool,
    resolution,
    now: ctx.wallClock(),
    ...(tierRef ? { cacheTierFound: ctx.tiers.store.get(`${namespace}/${tierRef}`) !== undefined } : {}),
    ...optional('figures', source?.figures(namespace, name)),
    ...optional('policyInForce', source?.policyInForce?.(namespace, name)),
    ...optional('routers', source?.routers?.(namespace, name)),
    ...optional('model', source?.model?.()),
    ...optional('anomalies', source?.anomalies?.(key)),
  };
  const { status, events } = buildPoolStatus(world);
  const r = await commitStatus(ctx, ctx.poolStatus, ctx.pools, pool, status, events);
  const refresh = source?.refreshMs?.(pool);
  if (refresh === undefined) return r;
  return { requeueAfterMs: Math.min(refresh, r?.requeueAfterMs ?? Infinity) };
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}
