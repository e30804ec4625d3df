import type { CacheTier, CacheTierStatus } from '../api/cachetier.js';
import type { Conflict } from './cache-assign.js';
import type { Reachability } from './cache-redis.js';
import { SECRET_FORBIDDEN } from './cache-secret.js';
import type { TierFigures } from './cache-view.js';
import { conditionWarnings, removeCondition, setCondition, type Condition } from './conditions.js';
import type { PendingEvent } from './context.js';

export interface TierWorld {
  tier: CacheTier;
  /** The pools this tier serves (cache-assign.ts), names in the tier's namespace. */
  pools: readonly string[];
  /** Pools spec.pools names that do not exist. */
  missing?: readonly string[];
  /** Pools this tier selects that another tier serves. */
  conflicts?: readonly Conflict[];
  /** A config problem only the operator can see (the Redis Secret); absent when the config is usable. */
  invalid?: { reason: string; message: string };
  /** The tier's Redis as last probed; absent when the tier has no L2. */
  redis?: Reachability;
  /** Figures from the routers' load reports; absent when none report (or no control plane runs). */
  figures?: TierFigures;
  /** The last flush annotation value acted on. */
  flushedToken?: string;
  now: Date;
}

const plural = (n: number, one: string, many = `${one}s`) => (n === 1 ? one : many);

/**
 * A CacheTier's status rebuilt from the observed world, and the Warning events its changes call for.
 * Pure. Conditions: Invalid (a config problem: a missing pool, Secret or key; Unknown while RBAC
 * keeps the operator from reading the Secret), Ready (caching for at least one pool with a usable
 * config; False with SecretForbidden naming the permission and the Helm value that grants it),
 * RedisReachable (Unknown without L2) and PoolConflict (present only while another tier serves a
 * pool this one selects).
 */
export function buildTierStatus(w: TierWorld): { status: CacheTierStatus; events: PendingEvent[] } {
  const { tier, now } = w;
  const gen = tier.metadata.generation ?? 0;
  const prev = tier.status ?? {};
  const ns = tier.metadata.namespace;
  const pools = [...w.pools].sort();
  const missing = w.missing ?? [];
  let conditions: Condition[] = prev.conditions ?? [];
  const set = (type: string, status: Condition['status'], reason: string, message: string) =>
    (conditions = setCondition(conditions, { type, status, reason, message }, gen, now));

  if (w.invalid?.reason === SECRET_FORBIDDEN)
    // The operator cannot see the Secret, so it cannot tell whether the spec is right: Ready says why.
    set(
      'Invalid',
      'Unknown',
      SECRET_FORBIDDEN,
      `the operator may not read Secret ${tier.spec.l2?.redis.secretRef?.name ?? ''}, so l2.redis.secretRef cannot be checked (Ready says what grants it)`,
    );
  else if (w.invalid) set('Invalid', 'True', w.invalid.reason, w.invalid.message);
  else if (missing.length > 0)
    set(
      'Invalid',
      'True',
      'PoolNotFound',
      `spec.pools names ${plural(missing.length, 'BackendPool')} ${missing.join(', ')}, which ${plural(missing.length, 'does', 'do')} not exist in ${ns}`,
    );
  else set('Invalid', 'False', 'Valid', 'the spec refers only to objects that exist');

  if (w.invalid) set('Ready', 'False', w.invalid.reason, `not applied: ${w.invalid.message}`);
  else if (pools.length === 0)
    set(
      'Ready',
      'False',
      'NoPools',
      w.conflicts?.length
        ? 'every pool it selects is served by another CacheTier'
        : tier.spec.pools
          ? 'none of the pools named exists'
          : 'poolSelector matches no BackendPool',
    );
  else
    set(
      'Ready',
      'True',
      'PoolsFound',
      `caching for ${pools.length} ${plural(pools.length, 'pool')}: ${pools.join(', ')}`,
    );

  if (!tier.spec.l2) set('RedisReachable', 'Unknown', 'NoL2', 'the tier has no L2 (spec.l2)');
  else if (!w.redis) set('RedisReachable', 'Unknown', 'NoRedisUrl', 'the Redis URL is not known');
  else if (w.redis.state === 'Unknown') set('RedisReachable', 'Unknown', 'NotProbed', w.redis.message);
  else if (w.redis.state === 'True') set('RedisReachable', 'True', 'Pong', w.redis.message);
  else set('RedisReachable', 'False', 'Unreachable', w.redis.message);

  if (w.conflicts?.length) {
    const parts = w.conflicts.map(
      (c) =>
        `${c.pool} is served by CacheTier ${c.servedBy} (${c.by === 'cacheTierRef' ? "the pool's cacheTierRef" : 'the older tier wins'})`,
    );
    set('PoolConflict', 'True', 'PoolServedByAnotherTier', parts.join('; '));
  } else conditions = removeCondition(conditions, 'PoolConflict');

  const events: PendingEvent[] = conditionWarnings(prev.conditions, conditions, {
    Invalid: 'True',
    Ready: 'False',
    RedisReachable: 'False',
    PoolConflict: 'True',
  });
  const f = w.figures;
  const status: CacheTierStatus = {
    observedGeneration: gen,
    conditions,
    pools,
    ...(f?.hitRatio ? { hitRatio: f.hitRatio } : {}),
    ...(f?.hitRatioSummary ? { hitRatioSummary: f.hitRatioSummary } : {}),
    ...(f ? { entries: f.entries, bytes: f.bytes, warmedKeys: f.warmedKeys, routers: f.routers } : {}),
    ...(f?.prefetchAccuracy !== undefined ? { prefetchAccuracy: f.prefetchAccuracy } : {}),
    ...(w.flushedToken !== undefined ? { flushedToken: w.flushedToken } : {}),
  };
  return { status, events };
}
