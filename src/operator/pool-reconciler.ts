import { resolvePoolSpec } from '../api/resolve.js';
import { splitKey } from '../kube/store.js';
import type { ReconcileResult } from '../kube/workqueue.js';
import { commitStatus, type OperatorContext, type PoolObject } from './context.js';
import type { DataPlaneFacts } from './data-plane-status.js';
import { resolveService, resolveStatic, type Resolution } from './endpoints.js';
import { buildPoolStatus, type PoolWorld } from './pool-status.js';
import { policyInForce, type FleetObserver, type PoolView, type RoutingPublisher } from './pool-view.js';

export interface PoolReconcilerDeps {
  ctx: OperatorContext;
  /** The fleet's side of each pool (absent: no control plane, status only). */
  fleet?: FleetObserver;
  /** Where each pool's routing goes (none without a control plane). */
  publishers: readonly RoutingPublisher[];
  /** What the xDS clients have of a pool (absent: no control plane). */
  dataPlanes?: (key: string) => DataPlaneFacts | undefined;
}

/**
 * BackendPool reconcile, level-based and idempotent, in three steps: resolve the pool's view from the
 * informers' caches (its spec's defaults, its endpoints, the fleet's facts), publish routing from the
 * view, then build status from the same view and let the StatusWriter decide whether to write it; the
 * events the change calls for are recorded once it is written. With a control plane the pool comes
 * back every telemetry interval, since its figures move without any object changing.
 */
export class PoolReconciler {
  constructor(private readonly d: PoolReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { ctx, fleet } = this.d;
    const pool = ctx.pools.store.get(key);
    if (!pool || pool.metadata.deletionTimestamp) {
      const { namespace, name } = splitKey(key);
      ctx.poolStatus.forget(namespace, name);
      fleet?.forget(key);
      this.publish(key, undefined);
      return; // NotFound is done.
    }
    const view = this.view(key, pool);
    // What the xDS clients have before this publish changes anything: status shows what they run (a
    // client always lags the push just made by a round trip), and the next reconcile shows this one.
    const dataPlanes = this.d.dataPlanes?.(key);
    this.publish(key, view);
    const r = await this.commitStatus(view, dataPlanes);
    if (!fleet) return r;
    return { requeueAfterMs: Math.min(view.spec.telemetry.intervalMs, r?.requeueAfterMs ?? Infinity) };
  }

  /** The pool as this reconcile sees it. */
  view(key: string, pool: PoolObject): PoolView {
    const spec = resolvePoolSpec(pool.spec);
    const resolution = resolvePool(this.d.ctx, pool);
    const fleet = this.d.fleet?.observe(key, pool, spec, resolution);
    return {
      key,
      pool,
      spec,
      resolution,
      policy: fleet ? policyInForce(spec, fleet.model.ready) : spec.balancing.policy,
      ...(fleet ? { fleet } : {}),
    };
  }

  private publish(key: string, view: PoolView | undefined): void {
    for (const p of this.d.publishers) p.publish(key, view);
  }

  private commitStatus(view: PoolView, dataPlanes: DataPlaneFacts | undefined): Promise<ReconcileResult> {
    const { ctx } = this.d;
    const { status, events } = buildPoolStatus({
      ...poolWorld(view, ctx),
      ...(dataPlanes ? { dataPlanes } : {}),
    });
    return commitStatus(ctx, ctx.poolStatus, ctx.pools, view.pool, status, events);
  }
}

/** What status is built from: the view, whether the CacheTier it names exists, and the time. */
function poolWorld(view: PoolView, ctx: Pick<OperatorContext, 'tiers' | 'wallClock'>): PoolWorld {
  const { pool, fleet } = view;
  const tierRef = pool.spec.cacheTierRef?.name;
  return {
    pool,
    spec: view.spec,
    resolution: view.resolution,
    policy: view.policy,
    now: ctx.wallClock(),
    ...(tierRef
      ? { cacheTierFound: ctx.tiers.store.get(`${pool.metadata.namespace}/${tierRef}`) !== undefined }
      : {}),
    ...(fleet
      ? { figures: fleet.figures, routers: fleet.routers, model: fleet.model, anomalies: fleet.anomalies }
      : {}),
    ...(fleet?.deadlines ? { deadlines: fleet.deadlines } : {}),
  };
}

/** Resolves the pool's endpoints from the informers' caches (no API calls). */
function resolvePool(ctx: OperatorContext, pool: PoolObject): Resolution {
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
