import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Backend } from '../../../src/tools/backend/server.js';
import type { Router } from '../../../src/router/router.js';
import {
  demoClient,
  demoPool,
  echo,
  echoCalls,
  startBackends,
  startRouter,
  type DemoClient,
} from '../../support/grpc.js';
import { sleep, waitFor } from '../../support/wait.js';

// Predictive warming end to end: a real router whose warmer re-issues hot calls through the router's
// own pipeline to real backends, and a real Redis (the shared test one) for the published hot set.
const ECHO = '/sibyl.demo.v1.Demo/Echo';
const REDIS = process.env.SIBYL_TEST_REDIS_URL as string;

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const backendCalls = echoCalls;

async function setup(n = 1): Promise<Backend[]> {
  const backends = await startBackends(n, { settings: { latencyMs: 2, jitter: 0 } });
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))).then(() => undefined));
  return backends;
}

async function router(pool: string, backends: Backend[], cache: Record<string, unknown>): Promise<Router> {
  const r = await startRouter([demoPool(backends, { name: pool, cache })]);
  cleanup.push(() => r.close());
  await r.poolCache(pool)?.l2?.ready();
  return r;
}

function client(r: Router): DemoClient {
  const c = demoClient(r.address);
  cleanup.push(() => c.close());
  return c;
}

const pc = (r: Router, pool: string) => {
  const c = r.poolCache(pool);
  if (!c) throw new Error(`no cache for ${pool}`);
  return c;
};
const tier = (r: Router, pool: string, t: string) =>
  pc(r, pool)
    .tierCounters()
    .find((c) => c.tier === t);
const poolName = () => `warm-${randomUUID().slice(0, 8)}`;

describe('cache warming', () => {
  it('a hot key is refreshed through the router before it expires: calls after its TTL are still hits', async () => {
    const backends = await setup(2);
    const pool = poolName();
    const r = await router(pool, backends, {
      methods: [{ method: ECHO, ttl: '2s' }],
      warming: { window: '2s', horizon: '1s', topK: 10, minFrequency: 1, budgetPercent: 100 },
    });
    const c = client(r);
    const req = { message: randomUUID(), responseSize: 64 };
    const first = await echo(c, req);
    expect(first.error).toBeUndefined();
    const started = Date.now();
    const results: Array<{ atMs: number; body: unknown; error: unknown }> = [];
    const refreshed = () => pc(r, pool).warmer?.counters().refreshed ?? 0;
    // A steady hot key (a call every 50 ms: the workload, not a wait) until the warmer has refreshed it
    // three times, so the calls run well past the 2 s TTL, twice over.
    while (refreshed() < 3) {
      if (Date.now() - started > 30_000) throw new Error(`${refreshed()} refreshes in 30 s, not 3`);
      const x = await echo(c, req);
      results.push({ atMs: Date.now() - started, body: x.response?.message, error: x.error });
      await sleep(50);
    }
    const elapsedMs = Date.now() - started;
    expect(results.filter((x) => x.error)).toEqual([]);
    expect(results.every((x) => x.body === req.message)).toBe(true);
    // One miss (the first call); every later call, well past the 2 s TTL, was a hit.
    expect(tier(r, pool, 'l1')).toMatchObject({ misses: 1, hits: results.length });
    const w = pc(r, pool).warmer?.counters();
    // The backend saw the refreshes: about one per TTL, never more than one per 1.5 s (a refresh at most
    // TTL/4 early), however long the loop took.
    expect(w?.refreshed).toBeGreaterThanOrEqual(3);
    expect(w?.refreshed).toBeLessThanOrEqual(Math.floor(elapsedMs / 1500) + 1);
    expect(await backendCalls(backends)).toBe(1 + (w?.refreshed ?? 0));
    expect(w?.prefetchHits).toBeGreaterThanOrEqual((w?.refreshed ?? 0) - 1);
    const l1Row = r.cacheCounters().find((x) => x.tier === 'l1');
    expect(l1Row?.prefetched).toBe(w?.prefetched);
    const text = await r.metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`sibyl_cache_prefetched\\{pool="${pool}"\\} ${w?.prefetched}`));
  });

  it('the budget: refresh calls stay within budgetPercent of the calls seen', async () => {
    const backends = await setup();
    const pool = poolName();
    const r = await router(pool, backends, {
      methods: [{ method: ECHO, ttl: '1s' }],
      // 1%: 30 hot keys with a 1 s TTL want far more refreshes than 1% of the calls, however slowly a
      // busy machine runs this loop, so the budget binds (at 10% a slow loop sometimes never met it).
      warming: { window: '2s', horizon: '1s', topK: 50, minFrequency: 0.5, budgetPercent: 1 },
    });
    const c = client(r);
    const keys = Array.from({ length: 30 }, () => ({ message: randomUUID(), responseSize: 16 }));
    let calls = 0;
    const started = Date.now();
    const warmer = () => pc(r, pool).warmer?.counters();
    // Batches of ten calls every 20 ms (the workload) until the warmer has both refreshed and been
    // held back by its budget.
    while (!((warmer()?.refreshed ?? 0) > 0 && (warmer()?.budgetSkips ?? 0) > 0)) {
      if (Date.now() - started > 30_000)
        throw new Error(`the budget did not bind in 30 s: ${JSON.stringify(warmer())}`);
      const batch = await Promise.all(keys.slice(0, 10).map((k, i) => echo(c, keys[(calls + i) % 30] ?? k)));
      expect(batch.filter((x) => x.error)).toEqual([]);
      calls += batch.length;
      await sleep(20);
    }
    const w = warmer();
    const l1 = tier(r, pool, 'l1');
    expect(w?.refreshed).toBeGreaterThan(0);
    expect(w?.refreshed).toBeLessThanOrEqual(0.01 * calls);
    expect(w?.budgetSkips).toBeGreaterThan(0);
    // The backend saw the misses and the warmer's calls, nothing else.
    expect(await backendCalls(backends)).toBe(
      (l1?.misses ?? 0) + (w?.refreshed ?? 0) + (w?.refreshFailures ?? 0),
    );
  });

  it("a second router starts with the first one's hot set in L1, filled from L2", async () => {
    const backends = await setup();
    const pool = poolName();
    const cache = {
      methods: [{ method: ECHO, ttl: '60s' }],
      l2: { redis: { url: REDIS }, timeout: '200ms' },
      warming: { window: '10s', topK: 10, minFrequency: 1 },
    };
    const a = await router(pool, backends, cache);
    const ca = client(a);
    const hotKeys = Array.from({ length: 3 }, () => ({ message: randomUUID(), responseSize: 32 }));
    for (let i = 0; i < 5; i++) for (const k of hotKeys) expect((await echo(ca, k)).error).toBeUndefined();
    await echo(ca, { message: randomUUID(), responseSize: 32 }); // once: not hot
    const redis = new Redis(REDIS);
    cleanup.push(() => void redis.disconnect());
    const published = await waitFor(
      async () => {
        const m = await redis.zrevrange(`sibyl:cache:${pool}:__hot`, 0, -1);
        return m.length >= 3 ? m : undefined;
      },
      { what: 'the hot set published to Redis' },
    );
    expect(published).toHaveLength(3);
    const before = await backendCalls(backends);

    const b = await router(pool, backends, cache);
    await pc(b, pool).warmer?.started;
    expect(tier(b, pool, 'l1')?.entries).toBe(3);
    expect(pc(b, pool).warmer?.counters().prefetched).toBe(3);
    const cb = client(b);
    for (const k of hotKeys) expect((await echo(cb, k)).response?.message).toBe(k.message);
    expect(tier(b, pool, 'l1')).toMatchObject({ hits: 3, misses: 0 });
    expect(tier(b, pool, 'l2')?.hits).toBe(0);
    expect(pc(b, pool).warmer?.counters().prefetchHits).toBe(3);
    expect(await backendCalls(backends)).toBe(before);
    await pc(a, pool).flush(); // leaves nothing of this test in the shared Redis
  });
});
