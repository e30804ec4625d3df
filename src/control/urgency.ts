import type { WirePool } from './messages.js';

/**
 * Whether a pool's change must reach routers at once (docs/architecture.md, "Control stream"): a removed or no-longer-ready
 * endpoint, a breaker the fleet opened, a policy, settings or cache change (a flush too), a pool
 * added or removed. Only refreshed figures (weights, predictions, error rates, load) may wait for the
 * next push interval.
 */
export function isUrgent(before: WirePool | undefined, after: WirePool | undefined): boolean {
  if (!before || !after) return true;
  if (before.policy !== after.policy || before.specJson !== after.specJson) return true;
  if ((before.cacheJson ?? '') !== (after.cacheJson ?? '')) return true;
  if ((before.cacheFlushToken ?? '') !== (after.cacheFlushToken ?? '')) return true;
  const was = new Map(before.endpoints.map((e) => [e.address, e]));
  if (after.endpoints.length !== before.endpoints.length) return true;
  for (const e of after.endpoints) {
    const old = was.get(e.address);
    if (!old) return true; // added (and one removed, since the counts match)
    if (old.ready !== e.ready || old.forceOpen !== e.forceOpen) return true;
  }
  return false;
}
