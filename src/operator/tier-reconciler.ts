import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { CacheTier } from '../api/cachetier.js';
import { GROUP, VERSION } from '../api/crd.js';
import type { ReconcileResult } from '../kube/workqueue.js';
import { splitKey } from '../kube/store.js';
import { errorMessage } from '../util/errors.js';
import { FIELD_MANAGER } from './status-writer.js';
import { assignTiers, poolsOf } from './cache-assign.js';
import { effectiveCacheSpec, type PoolCacheConfigs } from './cache-config.js';
import { l2KeyPrefix as l2Prefix } from '../cache/pool-cache.js';
import type { RedisAdmin, RedisTarget } from './cache-redis.js';
import { DeniedSecrets, readRedisUrl } from './cache-secret.js';
import type { TierFigures } from './cache-view.js';
import { commitStatus, involved, type OperatorContext, type TierObject } from './context.js';
import type { LabelSelector } from './labels.js';
import { buildTierStatus } from './tier-status.js';

/** Set on every CacheTier: its deletion waits until the L2 keys of its pools are deleted. */
const CLEANUP_FINALIZER = 'sibyl.dev/cache-cleanup';
/** `kubectl annotate ct NAME sibyl.dev/flush=<anything new>` flushes the tier once per new value. */
export const FLUSH_ANNOTATION = 'sibyl.dev/flush';

export interface TierReconcilerOptions {
  kc: KubeConfig;
  redis: RedisAdmin;
  /** Where the effective cache config of each pool goes for the control stream. */
  configs: PoolCacheConfigs;
  /** Re-publishes a pool's routing entry (its cache config or flush token changed). */
  enqueuePool: (key: string) => void;
  /** The routers' cache figures for pool keys (absent without a control plane). */
  figures?: (pools: readonly string[]) => TierFigures | undefined;
  /** Reconcile every tier this often (figures, Redis probes, the Secret); default 5 s. */
  refreshMs?: number;
  /**
   * How long a deleted tier waits for its Redis to take the deletes, from its deletionTimestamp;
   * after that the finalizer goes with a Warning and the keys are left to their TTLs. Default 5 min.
   */
  cleanupTimeoutMs?: number;
}

/**
 * CacheTier reconcile (issue 6): which pools the tier serves (cache-assign.ts), its effective config for
 * their routers (the Redis URL read from its Secret if need be), Redis reachability, flushes on a new
 * annotation value, the cleanup finalizer, and status with the routers' figures (tier-status.ts).
 */
export class TierReconciler {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  /** Flush annotation values acted on, by tier uid (status may be written later than the flush). */
  private readonly flushed = new Map<string, string>();
  /** The last Redis each tier used, by uid: a deleted tier whose Secret is gone first can still clean. */
  private readonly lastTarget = new Map<string, RedisTarget>();
  private readonly cleanupAttempts = new Map<string, number>();
  /** Secrets RBAC refused: re-read after a doubling delay (refresh interval → 1 min), not every reconcile. */
  private readonly denied: DeniedSecrets;

  constructor(
    private readonly ctx: OperatorContext,
    private readonly o: TierReconcilerOptions,
  ) {
    this.core = o.kc.makeApiClient(CoreV1Api);
    this.custom = o.kc.makeApiClient(CustomObjectsApi);
    this.denied = new DeniedSecrets({ initialMs: o.refreshMs ?? 5000, maxMs: 60_000 });
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const ctx = this.ctx;
    const tier = ctx.tiers.store.get(key);
    const { namespace, name } = splitKey(key);
    if (!tier) {
      ctx.tierStatus.forget(namespace, name);
      this.publish(key, new Map());
      return;
    }
    if (tier.metadata.deletionTimestamp) {
      ctx.tierStatus.forget(namespace, name);
      this.publish(key, new Map());
      return this.cleanup(tier);
    }
    let current = tier;
    if (!(tier.metadata.finalizers ?? []).includes(CLEANUP_FINALIZER))
      current = await this.setFinalizers(tier, [...(tier.metadata.finalizers ?? []), CLEANUP_FINALIZER]);

    const assignment = this.assignment(namespace);
    const pools = poolsOf(assignment, name);
    const uid = tier.metadata.uid ?? key;

    const resolved = await this.target(current);
    let redis;
    if (resolved && 'target' in resolved) {
      this.lastTarget.set(uid, resolved.target);
      redis = this.o.redis.reachability(resolved.target);
    }
    const invalid = resolved && 'invalid' in resolved ? resolved.invalid : undefined;

    // Flush: once per new annotation value (status.flushedToken, or this process's memory of a flush
    // whose status write is still deferred).
    let flushedToken = this.flushed.get(uid) ?? current.status?.flushedToken;
    const wanted = current.metadata.annotations?.[FLUSH_ANNOTATION];
    if (wanted !== undefined && wanted !== flushedToken) {
      const target = resolved && 'target' in resolved ? resolved.target : undefined;
      if (await this.flush(current, pools, target, wanted)) {
        this.flushed.set(uid, wanted);
        flushedToken = wanted;
      }
    }

    const entries = new Map<string, { cacheJson: string; flushToken: string }>();
    if (!invalid) {
      const url = resolved && 'target' in resolved ? resolved.target.url : undefined;
      const cacheJson = JSON.stringify(effectiveCacheSpec(current.spec, url));
      for (const p of pools) entries.set(`${namespace}/${p}`, { cacheJson, flushToken: flushedToken ?? '' });
    }
    this.publish(key, entries);

    const { status, events } = buildTierStatus({
      tier: current,
      pools,
      missing: assignment.missing.get(name) ?? [],
      conflicts: assignment.conflicts.get(name) ?? [],
      ...(invalid ? { invalid } : {}),
      ...(redis ? { redis } : {}),
      ...optional('figures', this.o.figures?.(pools.map((p) => `${namespace}/${p}`))),
      ...(flushedToken !== undefined ? { flushedToken } : {}),
      now: ctx.wallClock(),
    });
    const r = await commitStatus(ctx, ctx.tierStatus, ctx.tiers, current, status, events);
    const refresh = this.o.refreshMs ?? 5000;
    return { requeueAfterMs: Math.min(refresh, r?.requeueAfterMs ?? Infinity) };
  }

  /** Every tier of the namespace competes for its pools; any tier's reconcile computes the same answer. */
  private assignment(namespace: string) {
    const pools = this.ctx.pools.store
      .list()
      .filter((p) => p.metadata.namespace === namespace)
      .map((p) => ({
        name: p.metadata.name,
        labels: p.metadata.labels ?? {},
        ...(p.spec.cacheTierRef ? { tierRef: p.spec.cacheTierRef.name } : {}),
      }));
    const tiers = this.ctx.tiers.store
      .list()
      .filter((t) => t.metadata.namespace === namespace)
      .map((t) => ({
        name: t.metadata.name,
        ...(t.metadata.creationTimestamp ? { created: toIso(t.metadata.creationTimestamp) } : {}),
        ...(t.spec.pools ? { pools: t.spec.pools } : {}),
        ...(t.spec.poolSelector ? { poolSelector: t.spec.poolSelector as LabelSelector } : {}),
        deleting: Boolean(t.metadata.deletionTimestamp),
      }));
    return assignTiers(pools, tiers);
  }

  /** The tier's Redis: undefined without L2; `invalid` when the Secret or its key is missing or unreadable. */
  private async target(
    tier: CacheTier,
  ): Promise<{ target: RedisTarget } | { invalid: { reason: string; message: string } } | undefined> {
    const l2 = tier.spec.l2;
    if (!l2) return undefined;
    const base = {
      mode: l2.redis.mode ?? 'Standalone',
      ...(l2.redis.sentinelName ? { sentinelName: l2.redis.sentinelName } : {}),
    } as const;
    if (l2.redis.url) return { target: { url: l2.redis.url, ...base } };
    if (!l2.redis.secretRef)
      return { invalid: { reason: 'NoRedisUrl', message: 'l2.redis needs url or secretRef' } };
    const ns = tier.metadata.namespace ?? '';
    const key = `${ns}/${l2.redis.secretRef.name}`;
    const now = this.ctx.wallClock().getTime();
    const r =
      this.denied.pending(key, now) ??
      this.denied.record(key, await readRedisUrl(this.core, ns, l2.redis.secretRef), now);
    return r.ok ? { target: { url: r.url, ...base } } : { invalid: { reason: r.reason, message: r.message } };
  }

  /**
   * Deletes the pools' L2 keys; the new token (published by the caller) makes routers drop L1 and L3.
   * Redis failing: a FlushFailed Warning and false, so the token stays and the next reconcile (at the
   * refresh interval) tries again, while status goes on saying why (RedisReachable).
   */
  private async flush(
    tier: TierObject,
    pools: readonly string[],
    target: RedisTarget | undefined,
    token: string,
  ): Promise<boolean> {
    const ns = tier.metadata.namespace ?? '';
    let deleted = 0;
    if (target) {
      try {
        for (const p of pools) deleted += await this.o.redis.deletePrefix(target, l2Prefix(`${ns}/${p}`));
      } catch (e) {
        await this.event(
          tier,
          'Warning',
          'FlushFailed',
          `${FLUSH_ANNOTATION}=${token}: ${errorMessage(e)}; will retry`,
        );
        return false;
      }
    }
    const where = pools.length ? `of ${pools.join(', ')}` : '(the tier serves no pool)';
    await this.event(
      tier,
      'Normal',
      'Flushed',
      `${FLUSH_ANNOTATION}=${token}: deleted ${deleted} L2 ${deleted === 1 ? 'key' : 'keys'} ${where}${target ? '' : ' (no L2)'}; routers drop their L1 and L3 entries`,
    );
    return true;
  }

  /**
   * A deleted tier: delete its pools' L2 keys, then let it go. Redis unreachable → retry with backoff
   * (1 s doubling to 30 s) and a Warning saying so, until cleanupTimeoutMs after the deletion began;
   * then give up with a Warning and remove the finalizer anyway, so a Redis that is gone for good
   * never pins the object (its keys expire with their TTLs).
   */
  private async cleanup(tier: TierObject): Promise<ReconcileResult> {
    if (!(tier.metadata.finalizers ?? []).includes(CLEANUP_FINALIZER)) return;
    const uid = tier.metadata.uid ?? tier.metadata.name;
    const ns = tier.metadata.namespace ?? '';
    const pools = [...new Set([...(tier.status?.pools ?? []), ...(tier.spec.pools ?? [])])].sort();
    const done = async () => {
      await this.setFinalizers(
        tier,
        (tier.metadata.finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER),
      );
      this.flushed.delete(uid);
      this.lastTarget.delete(uid);
      this.cleanupAttempts.delete(uid);
    };
    if (!tier.spec.l2) return done();
    let target: RedisTarget | undefined;
    let why = 'its Secret is gone';
    try {
      const r = await this.target(tier);
      target = r && 'target' in r ? r.target : this.lastTarget.get(uid);
      if (r && 'invalid' in r) why = r.invalid.message;
    } catch (e) {
      target = this.lastTarget.get(uid);
      if (!target) throw e;
    }
    if (!target) {
      await this.event(
        tier,
        'Warning',
        'CleanupSkipped',
        `the tier's Redis URL is unknown (${why}): L2 keys left to expire`,
      );
      return done();
    }
    try {
      let deleted = 0;
      for (const p of pools) deleted += await this.o.redis.deletePrefix(target, l2Prefix(`${ns}/${p}`));
      await this.event(
        tier,
        'Normal',
        'CacheCleaned',
        `deleted ${deleted} L2 ${deleted === 1 ? 'key' : 'keys'} of ${pools.join(', ') || 'no pool'}`,
      );
      return done();
    } catch (e) {
      const since = Date.parse(toIso(tier.metadata.deletionTimestamp));
      const elapsed = this.ctx.wallClock().getTime() - (Number.isFinite(since) ? since : 0);
      const limit = this.o.cleanupTimeoutMs ?? 5 * 60_000;
      if (elapsed >= limit) {
        await this.event(
          tier,
          'Warning',
          'CleanupAbandoned',
          `could not delete the L2 keys in ${Math.round(limit / 1000)} s (${errorMessage(e)}): removing the finalizer; keys left to expire`,
        );
        return done();
      }
      const n = (this.cleanupAttempts.get(uid) ?? 0) + 1;
      this.cleanupAttempts.set(uid, n);
      const retryMs = Math.min(30_000, 1000 * 2 ** (n - 1), Math.max(100, limit - elapsed));
      await this.event(
        tier,
        'Warning',
        'CleanupRetrying',
        `could not delete the L2 keys: ${errorMessage(e)}; retrying in ${Math.ceil(retryMs / 1000)} s`,
      );
      return { requeueAfterMs: retryMs };
    }
  }

  private publish(tierKey: string, entries: ReadonlyMap<string, { cacheJson: string; flushToken: string }>) {
    for (const pool of this.o.configs.set(tierKey, entries)) this.o.enqueuePool(pool);
  }

  /** Finalizers go on the object itself (never /status); the merge patch replaces the whole list. */
  private async setFinalizers(tier: TierObject, finalizers: string[]): Promise<TierObject> {
    const out = (await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: tier.metadata.namespace ?? '',
        plural: 'cachetiers',
        name: tier.metadata.name,
        body: { metadata: { finalizers, resourceVersion: tier.metadata.resourceVersion } },
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as TierObject;
    this.ctx.tiers.store.put(out);
    return out;
  }

  private event(tier: TierObject, type: 'Normal' | 'Warning', reason: string, message: string) {
    return this.ctx.events.record(involved(tier), type, reason, message);
  }
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

/** Timestamps arrive as strings from a raw watch and as Dates from typed clients. */
function toIso(t: unknown): string {
  return t instanceof Date ? t.toISOString() : String(t);
}
