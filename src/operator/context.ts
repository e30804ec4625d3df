import type { KubernetesObject, V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { BackendPool } from '../api/backendpool.js';
import type { CacheTier } from '../api/cachetier.js';
import type { EventRecorder, InvolvedObject } from '../kube/events.js';
import type { Informer } from '../kube/informer.js';
import type { Clock } from '../util/clock.js';
import type { ReconcileResult } from '../kube/workqueue.js';
import type { OperatorMetrics } from './metrics.js';
import type { StatusWriter } from './status-writer.js';

export type PoolObject = BackendPool & KubernetesObject;
export type TierObject = CacheTier & KubernetesObject;

/** An event a reconcile records once its status is written (the change it reports is then real). */
export interface PendingEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What the reconcilers share: the informers' caches, writers and the clock. */
export interface OperatorContext {
  pools: Informer<PoolObject>;
  tiers: Informer<TierObject>;
  services: Informer<V1Service>;
  slices: Informer<V1EndpointSlice>;
  pods: Informer<V1Pod>;
  events: EventRecorder;
  poolStatus: StatusWriter;
  tierStatus: StatusWriter;
  metrics: OperatorMetrics;
  clock: Clock;
  wallClock: () => Date;
  log: Logger;
}

export function involved(obj: BackendPool | CacheTier): InvolvedObject {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name,
    namespace: obj.metadata.namespace ?? 'default',
    uid: obj.metadata.uid ?? '',
  };
}

async function recordAll(
  ctx: OperatorContext,
  obj: BackendPool | CacheTier,
  events: PendingEvent[],
): Promise<void> {
  for (const e of events) await ctx.events.record(involved(obj), e.type, e.reason, e.message);
}

/**
 * The common tail of a reconcile: write status if it changed and the interval allows, keep the cache
 * on our own write (so the next reconcile diffs against it), then record the events the change calls for.
 */
export async function commitStatus<T extends PoolObject | TierObject>(
  ctx: OperatorContext,
  writer: StatusWriter,
  informer: Informer<T>,
  obj: T,
  status: unknown,
  events: PendingEvent[],
): Promise<ReconcileResult> {
  const ns = obj.metadata.namespace ?? '';
  const out = await writer.write(ns, obj.metadata.name, obj.status, status);
  if (!out.written) {
    ctx.metrics.statusSkipped.inc({ kind: obj.kind, why: out.why });
    return out.why === 'deferred' ? { requeueAfterMs: out.retryInMs } : undefined;
  }
  ctx.metrics.statusWrites.inc({ kind: obj.kind });
  informer.store.put(out.object as T);
  await recordAll(ctx, obj, events);
}
