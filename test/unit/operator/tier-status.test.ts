import type { CacheTier } from '../../../src/api/cachetier.js';
import { assignTiers, poolsOf, type PoolFacts, type TierFacts } from '../../../src/operator/cache-assign.js';
import { effectiveCacheSpec, PoolCacheConfigs } from '../../../src/operator/cache-config.js';
import { SECRET_FORBIDDEN, secretForbiddenMessage } from '../../../src/operator/cache-secret.js';
import { findCondition } from '../../../src/operator/conditions.js';
import { buildTierStatus } from '../../../src/operator/tier-status.js';
import { cacheConfigIssues } from '../../../src/cache/config.js';

const now = new Date('2026-01-01T00:00:00Z');
const tier = (spec: Partial<CacheTier['spec']> = {}, status?: CacheTier['status']): CacheTier => ({
  apiVersion: 'sibyl.dev/v1alpha1',
  kind: 'CacheTier',
  metadata: { name: 'ct', namespace: 'ns', generation: 3, uid: 'u' },
  spec: { pools: ['a'], methods: [{ method: '/x.Y/Get', ttl: '30s' }], ...spec },
  ...(status ? { status } : {}),
});
const cond = (s: { conditions?: unknown }, type: string) =>
  findCondition(s.conditions as Parameters<typeof findCondition>[0], type);

describe('buildTierStatus', () => {
  it('Ready with its pools, RedisReachable Unknown without L2, figures copied in', () => {
    const { status, events } = buildTierStatus({
      tier: tier(),
      pools: ['b', 'a'],
      figures: {
        hitRatio: { l1: 0.7, l2: 0.2, l3: 0, overall: 0.9 },
        hitRatioSummary: '90% (L1 70%, L2 20%)',
        entries: 3,
        bytes: 300,
        warmedKeys: 0,
        routers: 2,
      },
      now,
    });
    expect(status.pools).toEqual(['a', 'b']);
    expect(cond(status, 'Ready')).toMatchObject({ status: 'True', message: 'caching for 2 pools: a, b' });
    expect(cond(status, 'Invalid')).toMatchObject({ status: 'False' });
    expect(cond(status, 'RedisReachable')).toMatchObject({ status: 'Unknown', reason: 'NoL2' });
    expect(status).toMatchObject({ hitRatioSummary: '90% (L1 70%, L2 20%)', entries: 3, routers: 2 });
    expect(status.prefetchAccuracy).toBeUndefined();
    expect(events).toEqual([]);
  });

  it('a missing Secret is Invalid and not Ready, with the message, and a Warning once', () => {
    const t = tier({ l2: { redis: { secretRef: { name: 'redis', key: 'url' } } } });
    const invalid = {
      reason: 'SecretNotFound',
      message: 'l2.redis.secretRef names Secret redis, which does not exist in ns',
    };
    const first = buildTierStatus({ tier: t, pools: ['a'], invalid, now });
    expect(cond(first.status, 'Invalid')).toMatchObject({
      status: 'True',
      reason: 'SecretNotFound',
      message: invalid.message,
    });
    expect(cond(first.status, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(cond(first.status, 'RedisReachable')).toMatchObject({ status: 'Unknown', reason: 'NoRedisUrl' });
    expect(first.events.map((e) => e.reason).sort()).toEqual(['SecretNotFound', 'SecretNotFound']);
    const again = buildTierStatus({ tier: { ...t, status: first.status }, pools: ['a'], invalid, now });
    expect(again.events).toEqual([]);
    expect(again.status).toEqual(first.status);
  });

  it('a Secret RBAC withholds: Ready=False SecretForbidden with the grant, Invalid Unknown, one Warning', () => {
    const t = tier({ l2: { redis: { secretRef: { name: 'redis' } } } });
    const invalid = { reason: SECRET_FORBIDDEN, message: secretForbiddenMessage('ns', 'redis') };
    const first = buildTierStatus({ tier: t, pools: ['a'], invalid, now });
    expect(cond(first.status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SecretForbidden',
      message: `not applied: ${invalid.message}`,
    });
    // The operator cannot see the Secret, so it does not claim the spec is wrong.
    expect(cond(first.status, 'Invalid')).toMatchObject({
      status: 'Unknown',
      reason: 'SecretForbidden',
      message: expect.stringContaining('Secret redis'),
    });
    expect(first.events).toEqual([
      { type: 'Warning', reason: 'SecretForbidden', message: `not applied: ${invalid.message}` },
    ]);
    const again = buildTierStatus({ tier: { ...t, status: first.status }, pools: ['a'], invalid, now });
    expect(again.events).toEqual([]);
    // Granted: the Secret is read and the tier is Ready again.
    const granted = buildTierStatus({ tier: { ...t, status: first.status }, pools: ['a'], now });
    expect(cond(granted.status, 'Ready')).toMatchObject({ status: 'True', reason: 'PoolsFound' });
    expect(cond(granted.status, 'Invalid')).toMatchObject({ status: 'False', reason: 'Valid' });
  });

  it('RedisReachable follows the probe; False names the error and warns', () => {
    const t = tier({ l2: { redis: { url: 'redis://127.0.0.1:1' } } });
    const up = buildTierStatus({
      tier: t,
      pools: ['a'],
      redis: { state: 'True', message: 'ok', atMs: 1 },
      now,
    });
    expect(cond(up.status, 'RedisReachable')).toMatchObject({ status: 'True', reason: 'Pong' });
    const down = buildTierStatus({
      tier: { ...t, status: up.status },
      pools: ['a'],
      redis: { state: 'False', message: 'redis://127.0.0.1:1: connect ECONNREFUSED', atMs: 2 },
      now,
    });
    expect(cond(down.status, 'RedisReachable')).toMatchObject({
      status: 'False',
      reason: 'Unreachable',
      message: expect.stringContaining('ECONNREFUSED'),
    });
    expect(down.events).toEqual([
      { type: 'Warning', reason: 'Unreachable', message: expect.stringContaining('ECONNREFUSED') },
    ]);
    // Ready does not depend on Redis: routers still serve from L1 and L3.
    expect(cond(down.status, 'Ready')?.status).toBe('True');
  });

  it('missing pools are Invalid; conflicts get a PoolConflict condition that goes when they do', () => {
    const t = tier({ pools: ['a', 'gone'] });
    const r = buildTierStatus({
      tier: t,
      pools: [],
      missing: ['gone'],
      conflicts: [{ pool: 'a', servedBy: 'older', by: 'pools' }],
      now,
    });
    expect(cond(r.status, 'Invalid')).toMatchObject({
      status: 'True',
      reason: 'PoolNotFound',
      message: expect.stringContaining('gone'),
    });
    expect(cond(r.status, 'Ready')).toMatchObject({
      status: 'False',
      message: 'every pool it selects is served by another CacheTier',
    });
    expect(cond(r.status, 'PoolConflict')?.message).toBe(
      'a is served by CacheTier older (the older tier wins)',
    );
    const later = buildTierStatus({ tier: { ...t, status: r.status }, pools: ['a'], now });
    expect(cond(later.status, 'PoolConflict')).toBeUndefined();
  });

  it('status is rebuilt: figures vanish with the routers; flushedToken is kept', () => {
    const r = buildTierStatus({
      tier: tier({}, { hitRatioSummary: '50%', entries: 9, flushedToken: 'x' }),
      pools: ['a'],
      flushedToken: 'x',
      now,
    });
    expect(r.status.hitRatioSummary).toBeUndefined();
    expect(r.status.entries).toBeUndefined();
    expect(r.status.flushedToken).toBe('x');
  });
});

describe('assignTiers', () => {
  const pools: PoolFacts[] = [
    { name: 'a', labels: { cache: 'yes' } },
    { name: 'b', labels: { cache: 'yes' }, tierRef: 'new' },
    { name: 'c', labels: {} },
    { name: 'd', labels: { cache: 'yes' }, tierRef: 'nope' },
  ];
  const tiers: TierFacts[] = [
    { name: 'new', created: '2026-01-02T00:00:00Z', poolSelector: { matchLabels: { cache: 'yes' } } },
    { name: 'old', created: '2026-01-01T00:00:00Z', pools: ['a', 'b', 'x'] },
  ];
  it('cacheTierRef wins, then the oldest tier; losers see the conflict; a dangling ref gets nothing', () => {
    const a = assignTiers(pools, tiers);
    expect(a.byPool.get('a')).toEqual({ tier: 'old', by: 'pools' });
    expect(a.byPool.get('b')).toEqual({ tier: 'new', by: 'cacheTierRef' });
    expect(a.byPool.has('c')).toBe(false);
    expect(a.byPool.has('d')).toBe(false);
    expect(poolsOf(a, 'old')).toEqual(['a']);
    expect(a.conflicts.get('new')).toEqual([{ pool: 'a', servedBy: 'old', by: 'pools' }]);
    expect(a.conflicts.get('old')).toEqual([{ pool: 'b', servedBy: 'new', by: 'cacheTierRef' }]);
    expect(a.missing.get('old')).toEqual(['x']);
  });
  it('a tier being deleted serves nothing; the other takes over', () => {
    const a = assignTiers(pools, [
      { ...(tiers[1] as (typeof tiers)[1]), deleting: true },
      tiers[0] as (typeof tiers)[0],
    ]);
    expect(poolsOf(a, 'new')).toEqual(['a', 'b']);
    expect(poolsOf(a, 'old')).toEqual([]);
  });
});

describe('effectiveCacheSpec', () => {
  it('drops the pool selection and the Secret, puts the resolved URL in, and passes a routes-file check', () => {
    const spec = tier({
      keyHeaders: ['tenant'],
      l1: { maxEntries: 10 },
      l2: { redis: { secretRef: { name: 's', key: 'url' }, mode: 'Standalone' }, ttl: '5m' },
    }).spec;
    const eff = effectiveCacheSpec(spec, 'redis://10.0.0.1:6379');
    expect(eff).toMatchObject({
      methods: spec.methods,
      keyHeaders: ['tenant'],
      l1: { maxEntries: 10 },
      l2: { redis: { url: 'redis://10.0.0.1:6379', mode: 'Standalone' }, ttl: '5m' },
    });
    expect(JSON.stringify(eff)).not.toMatch(/secretRef|pools/);
    expect(cacheConfigIssues(eff, 'cache')).toEqual([]);
    // Without a URL there is no L2.
    expect(effectiveCacheSpec(spec, undefined).l2).toBeUndefined();
  });
});

describe('PoolCacheConfigs', () => {
  it('answers the pools whose entry changed; a tier only removes its own pools', () => {
    const c = new PoolCacheConfigs();
    expect(c.set('ns/t1', new Map([['ns/a', { cacheJson: '{}', flushToken: '' }]]))).toEqual(['ns/a']);
    expect(c.set('ns/t1', new Map([['ns/a', { cacheJson: '{}', flushToken: '' }]]))).toEqual([]);
    expect(c.set('ns/t1', new Map([['ns/a', { cacheJson: '{}', flushToken: 'f1' }]]))).toEqual(['ns/a']);
    expect(c.set('ns/t2', new Map([['ns/a', { cacheJson: '{"x":1}', flushToken: '' }]]))).toEqual(['ns/a']);
    expect(c.drop('ns/t1')).toEqual([]);
    expect(c.get('ns/a')?.tier).toBe('ns/t2');
    expect(c.drop('ns/t2')).toEqual(['ns/a']);
    expect(c.get('ns/a')).toBeUndefined();
  });
});
