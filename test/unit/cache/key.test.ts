import { cacheKey } from '../../../src/cache/key.js';
import { cacheConfigIssues, cacheSettings } from '../../../src/cache/config.js';
import { validateRouterConfig } from '../../../src/router/config.js';

const M = '/sibyl.demo.v1.Demo/Echo';
const body = Buffer.from([0, 0, 0, 0, 2, 8, 1]);

describe('cacheKey', () => {
  it('is stable hex and depends on method, body, grpc-encoding and the listed headers only', () => {
    const k = cacheKey(M, body, {}, []);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey(M, Buffer.from(body), { 'user-agent': 'x', 'x-other': 'y' }, [])).toBe(k);
    expect(cacheKey('/sibyl.demo.v1.Demo/Other', body, {}, [])).not.toBe(k);
    expect(cacheKey(M, Buffer.from([0, 0, 0, 0, 2, 8, 2]), {}, [])).not.toBe(k);
    expect(cacheKey(M, body, { 'grpc-encoding': 'gzip' }, [])).not.toBe(k);
    expect(cacheKey(M, body, { 'grpc-encoding': 'identity' }, [])).toBe(k);
    const t1 = cacheKey(M, body, { tenant: 'a' }, ['tenant']);
    expect(cacheKey(M, body, { tenant: 'b' }, ['tenant'])).not.toBe(t1);
    expect(cacheKey(M, body, {}, ['tenant'])).not.toBe(t1);
    expect(cacheKey(M, body, { tenant: '' }, ['tenant'])).not.toBe(cacheKey(M, body, {}, ['tenant']));
    expect(cacheKey(M, body, { a: '1', b: '2' }, ['b', 'a'])).toBe(
      cacheKey(M, body, { a: '1', b: '2' }, ['a', 'b']),
    );
  });
});

describe('routes-file cache config', () => {
  const pool = (cache: unknown) => ({
    name: 'demo',
    match: { services: ['sibyl.demo.v1.Demo'] },
    endpoints: [{ address: '127.0.0.1:1' }],
    cache,
  });

  it('accepts the CacheTierSpec shape without pools, and resolves defaults', () => {
    const cfg = validateRouterConfig({
      pools: [
        pool({
          methods: [{ method: M, ttl: '30s' }],
          keyHeaders: ['tenant'],
          l1: { maxBytes: '1Mi' },
          l2: { redis: { url: 'redis://127.0.0.1:6379' }, ttl: '5m' },
          l3: { path: '/tmp/x', maxBytes: 1000 },
        }),
      ],
    });
    const s = cacheSettings(cfg.pools[0]?.cache as never);
    expect(s.methods.get(M)).toBe(30_000);
    expect(s.l1).toEqual({ maxBytes: 1 << 20, maxEntries: 100_000, maxTtlMs: undefined });
    expect(s.l2).toMatchObject({ mode: 'Standalone', timeoutMs: 50, maxTtlMs: 300_000 });
    expect(s.l3).toMatchObject({ path: '/tmp/x', maxBytes: 1000 });
  });

  it('refuses unknown fields, a missing url, Sentinel without a name and bad sizes, with paths', () => {
    expect(() => validateRouterConfig({ pools: [pool({ methods: [{ method: M }], pools: ['x'] })] })).toThrow(
      /pools\[0\]\.cache\.pools: unknown field/,
    );
    expect(
      cacheConfigIssues(
        { methods: [{ method: M }], l2: { redis: { mode: 'Sentinel', url: 'redis://h:1' } } },
        'c',
      ),
    ).toEqual([
      {
        path: 'c.l2.redis.sentinelName',
        message: 'Sentinel mode needs sentinelName (the master group name)',
      },
    ]);
    expect(
      cacheConfigIssues({ methods: [{ method: M }], l2: { redis: {} } }, 'c').map((i) => i.path),
    ).toEqual(['c.l2.redis.url']);
    expect(
      cacheConfigIssues({ methods: [{ method: M }], l1: { maxBytes: 'lots' } }, 'c').map((i) => i.path),
    ).toEqual(['c.l1.maxBytes']);
    expect(cacheConfigIssues({ methods: [] }, 'c').length).toBeGreaterThan(0);
  });
});
