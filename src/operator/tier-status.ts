import type { CacheTier, CacheTierStatus } from '../api/cachetier.js';
import { conditionWarnings, setCondition, type Condition } from './conditions.js';
import { matchesSelector, type LabelSelector } from './labels.js';
import type { PendingEvent } from './pool-status.js';

export interface TierWorld {
  tier: CacheTier;
  /** Pools in the tier's namespace: name → labels. */
  pools: ReadonlyMap<string, Record<string, string>>;
  now: Date;
}

/** A CacheTier's status from the pools that exist; cache figures arrive with the cache issue. */
export function buildTierStatus(w: TierWorld): { status: CacheTierStatus; events: PendingEvent[] } {
  const { tier, now } = w;
  const gen = tier.metadata.generation ?? 0;
  const prev = tier.status ?? {};
  let matched: string[];
  let missing: string[] = [];
  if (tier.spec.pools) {
    matched = tier.spec.pools.filter((p) => w.pools.has(p));
    missing = tier.spec.pools.filter((p) => !w.pools.has(p));
  } else {
    const sel = (tier.spec.poolSelector ?? {}) as LabelSelector;
    matched = [...w.pools].filter(([, labels]) => matchesSelector(sel, labels)).map(([n]) => n);
  }
  matched.sort();
  let conditions: Condition[] = prev.conditions ?? [];
  if (missing.length > 0) {
    const message = `spec.pools names BackendPool${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which do${missing.length > 1 ? '' : 'es'} not exist in ${tier.metadata.namespace}`;
    conditions = setCondition(
      conditions,
      { type: 'Invalid', status: 'True', reason: 'PoolNotFound', message },
      gen,
      now,
    );
  } else {
    conditions = setCondition(
      conditions,
      { type: 'Invalid', status: 'False', reason: 'Valid', message: 'every pool named exists' },
      gen,
      now,
    );
  }
  if (matched.length === 0) {
    const message = tier.spec.pools
      ? 'none of the pools named exists'
      : 'poolSelector matches no BackendPool';
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'False', reason: 'NoPools', message },
      gen,
      now,
    );
  } else {
    const message = `caching for ${matched.length} pool${matched.length > 1 ? 's' : ''}: ${matched.join(', ')}`;
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'True', reason: 'PoolsFound', message },
      gen,
      now,
    );
  }
  const events: PendingEvent[] = conditionWarnings(prev.conditions, conditions, {
    Invalid: 'True',
    Ready: 'False',
  });
  const status: CacheTierStatus = { ...prev, observedGeneration: gen, conditions, pools: matched };
  return { status, events };
}
