import type { ReconcileResult } from '../kube/workqueue.js';
import { splitKey } from '../kube/store.js';
import { commitStatus, type OperatorContext } from './context.js';
import { buildTierStatus } from './tier-status.js';

export async function reconcileTier(ctx: OperatorContext, key: string): Promise<ReconcileResult> {
  const tier = ctx.tiers.store.get(key);
  const { namespace, name } = splitKey(key);
  if (!tier || tier.metadata.deletionTimestamp) {
    ctx.tierStatus.forget(namespace, name);
    return;
  }
  const pools = new Map<string, Record<string, string>>();
  for (const p of ctx.pools.store.list()) {
    if (p.metadata.namespace === namespace) pools.set(p.metadata.name, p.metadata.labels ?? {});
  }
  const { status, events } = buildTierStatus({ tier, pools, now: ctx.wallClock() });
  return commitStatus(ctx, ctx.tierStatus, ctx.tiers, tier, status, events);
}
