import { SERVICE_NAME_LABEL } from '../kube/resources.js';
import { objectKey } from '../kube/store.js';
import type { OperatorContext, PoolObject, TierObject } from './context.js';
import { watch, type KeyChannel, type Watch } from './controller.js';
import { FLUSH_ANNOTATION } from './tier-reconciler.js';

/*
 * Which events reconcile which objects, stated in one place (controller-runtime's builder: For, then
 * Watches with a map function and predicates). Pods are not watched: a pool reads them from the cache
 * when its EndpointSlices change, and a terminating pod leaves its slice anyway.
 */

/** A pool's spec (generation), labels or deletion changed: status writes (ours) change none of them. */
const poolChanged = (p: PoolObject, old: PoolObject) => poolMeta(p) !== poolMeta(old);
const poolMeta = (p: PoolObject) =>
  JSON.stringify([p.metadata.generation, p.metadata.labels, p.metadata.deletionTimestamp]);

/** A tier's spec, flush annotation, deletion or finalizers (its cleanup) changed. */
const tierChanged = (t: TierObject, old: TierObject) => tierMeta(t) !== tierMeta(old);
const tierMeta = (t: TierObject) =>
  JSON.stringify([
    t.metadata.generation,
    t.metadata.annotations?.[FLUSH_ANNOTATION],
    t.metadata.deletionTimestamp,
    t.metadata.finalizers,
  ]);

/**
 * BackendPool reconciles: the pool itself; the pools a CacheTier names (its cache config); the pools
 * of a Service and of its EndpointSlices (their endpoints); and `external`: routers' load reports, a
 * refitted model, a tier's new cache config for a pool.
 */
export function poolWatches(ctx: OperatorContext, external: KeyChannel): Watch[] {
  const poolsBy = (index: string, value: string) => ctx.pools.store.byIndex(index, value).map(objectKey);
  return [
    watch(ctx.pools, (p) => [objectKey(p)], poolChanged),
    watch(ctx.tiers, (t) => poolsBy('tier', `${t.metadata.namespace}/${t.metadata.name}`), tierChanged),
    watch(ctx.services, (s) =>
      s.metadata?.name ? poolsBy('service', `${s.metadata.namespace}/${s.metadata.name}`) : [],
    ),
    watch(ctx.slices, (es) => {
      const svc = es.metadata?.labels?.[SERVICE_NAME_LABEL];
      return svc ? poolsBy('service', `${es.metadata?.namespace}/${svc}`) : [];
    }),
    external,
  ];
}

/**
 * CacheTier reconciles: the tier itself; every tier in a namespace where a tier's spec changed or a
 * pool's labels, spec or deletion did (which tier serves a pool is decided among them, by creation
 * order when two claim it); and `external`: a Redis whose reachability changed.
 */
export function tierWatches(ctx: OperatorContext, external: KeyChannel): Watch[] {
  const tiersIn = (ns: string | undefined) =>
    ctx.tiers.store
      .list()
      .filter((t) => t.metadata.namespace === ns)
      .map(objectKey);
  return [
    watch(ctx.tiers, (t) => [objectKey(t)], tierChanged),
    watch(
      ctx.tiers,
      (t) => tiersIn(t.metadata.namespace),
      (t, old) => t.metadata.generation !== old.metadata.generation,
    ),
    watch(ctx.pools, (p) => tiersIn(p.metadata.namespace), poolChanged),
    external,
  ];
}
