import { matchesSelector, type LabelSelector } from './labels.js';

/** What the assignment needs of a BackendPool (one namespace). */
export interface PoolFacts {
  name: string;
  labels: Record<string, string>;
  /** spec.cacheTierRef.name */
  tierRef?: string;
}

/** What the assignment needs of a CacheTier (same namespace). */
export interface TierFacts {
  name: string;
  /** metadata.creationTimestamp (RFC 3339); the older tier wins a pool two tiers select. */
  created?: string;
  pools?: readonly string[];
  poolSelector?: LabelSelector;
  /** Being deleted: it serves nothing (its finalizer is cleaning up). */
  deleting?: boolean;
}

/** Why a tier serves a pool. */
export type AssignedBy = 'cacheTierRef' | 'pools' | 'poolSelector';

/** A pool another tier also selects but does not get (said in the losing tier's status). */
export interface Conflict {
  pool: string;
  /** The tier that serves it. */
  servedBy: string;
  by: AssignedBy;
}

export interface Assignment {
  /** pool name → the tier serving it and why. */
  byPool: Map<string, { tier: string; by: AssignedBy }>;
  /** tier name → the pools it selects but another tier serves. */
  conflicts: Map<string, Conflict[]>;
  /** tier name → pools named in spec.pools that do not exist. */
  missing: Map<string, string[]>;
}

/**
 * Which CacheTier serves each BackendPool of a namespace. Pure and deterministic, so every
 * reconcile (of any tier) computes the same answer:
 *  1. a pool's spec.cacheTierRef wins (the pool owner's explicit choice), if that tier exists;
 *  2. else the tiers whose spec.pools names it or whose spec.poolSelector matches it; when several do,
 *     the oldest (creationTimestamp, then name) serves it, so a new tier never silently takes a pool
 *     from one already serving it. The others report the conflict in their status (condition
 *     PoolConflict) rather than on the pool, whose status is the pool reconciler's.
 * A tier being deleted serves nothing.
 */
export function assignTiers(pools: readonly PoolFacts[], tiers: readonly TierFacts[]): Assignment {
  const live = tiers.filter((t) => !t.deleting);
  const byName = new Map(live.map((t) => [t.name, t]));
  const order = [...live].sort(
    (a, b) => (a.created ?? '').localeCompare(b.created ?? '') || a.name.localeCompare(b.name),
  );
  const poolNames = new Set(pools.map((p) => p.name));
  const byPool = new Map<string, { tier: string; by: AssignedBy }>();
  const conflicts = new Map<string, Conflict[]>();
  const missing = new Map<string, string[]>();
  for (const t of live) {
    const gone = (t.pools ?? []).filter((p) => !poolNames.has(p));
    if (gone.length) missing.set(t.name, gone);
  }
  for (const p of pools) {
    const selecting = order
      .map((t) => ({ t, by: selects(t, p) }))
      .filter((x): x is { t: TierFacts; by: AssignedBy } => x.by !== undefined);
    let winner: { tier: string; by: AssignedBy } | undefined;
    if (p.tierRef && byName.has(p.tierRef)) winner = { tier: p.tierRef, by: 'cacheTierRef' };
    else if (p.tierRef)
      winner = undefined; // names a tier that does not exist: the pool says so
    else if (selecting[0]) winner = { tier: selecting[0].t.name, by: selecting[0].by };
    if (winner) byPool.set(p.name, winner);
    for (const s of selecting) {
      if (winner && s.t.name === winner.tier) continue;
      if (!winner) continue;
      const list = conflicts.get(s.t.name) ?? [];
      list.push({ pool: p.name, servedBy: winner.tier, by: winner.by });
      conflicts.set(s.t.name, list);
    }
  }
  return { byPool, conflicts, missing };
}

function selects(t: TierFacts, p: PoolFacts): AssignedBy | undefined {
  if (t.pools) return t.pools.includes(p.name) ? 'pools' : undefined;
  if (t.poolSelector) return matchesSelector(t.poolSelector, p.labels) ? 'poolSelector' : undefined;
  return undefined;
}

/** The pools a tier serves, sorted. */
export function poolsOf(a: Assignment, tier: string): string[] {
  return [...a.byPool]
    .filter(([, v]) => v.tier === tier)
    .map(([p]) => p)
    .sort();
}
