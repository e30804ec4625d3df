import { pino } from 'pino';
import { warmingSettings, type PoolCacheSpec } from '../../../src/cache/config.js';
import { MemoryStore } from '../../../src/cache/l1-memory.js';
import { PoolCache } from '../../../src/cache/pool-cache.js';
import { HotSet } from '../../../src/cache/sketch.js';
import { TieredCache, type Answer } from '../../../src/cache/tiered.js';
import type { CachedResponse } from '../../../src/cache/types.js';
import { Warmer, type HotList, type WarmRequest } from '../../../src/cache/warmer.js';
import { ManualTimers } from '../../../src/util/timers.js';

const M = '/t.S/Get';
const WALL0 = 1_700_000_000_000;
const log = pino({ level: 'silent' });
const resp = (s: string): CachedResponse => ({
  headers: { 'content-type': 'application/grpc' },
  body: Buffer.from(s),
  trailers: { 'grpc-status': '0' },
});

/** Lets the warmer's async work (ticks, fills) run to completion between clock steps. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function setup(warming: PoolCacheSpec['warming'], ttl = '10s', l1MaxEntries = 1000) {
  const timers = new ManualTimers(1_000_000); // not 0: lru-cache reads a start of 0 as "no TTL"
  const fetched: WarmRequest[] = [];
  let version = 0;
  const pc = new PoolCache(
    'p',
    { methods: [{ method: M, ttl }], l1: { maxEntries: l1MaxEntries }, warming },
    {
      log,
      now: () => timers.now(),
      wallNow: () => WALL0 + timers.now(),
      timers,
      fetch: (req) => {
        fetched.push(req);
        return Promise.resolve({ code: 0, response: resp(`${req.body.toString()}@${++version}`) });
      },
    },
  );
  const backend: string[] = [];
  /** A client call through the cache, as the pipeline makes it; returns where it was answered. */
  const call = async (k: string): Promise<string> => {
    const r = await pc.getOrLoad(
      M,
      Buffer.from(k),
      { 'content-type': 'application/grpc' },
      'normal',
      pc.ttlFor(M) ?? 0,
      () => {
        backend.push(k);
        return Promise.resolve({ code: 0, response: resp(k) });
      },
    );
    if (r.from === 'hit') return r.tier;
    if (r.from !== 'load') throw new Error(r.from);
    await r.filled;
    return 'backend';
  };
  /** Moves the clock in steps (running the warmer's ticks), calling `each` at every step. */
  const run = async (ms: number, stepMs: number, each?: () => Promise<void>) => {
    for (let t = 0; t < ms; t += stepMs) {
      timers.advance(stepMs);
      await settle();
      if (each) await each();
    }
  };
  return { pc, timers, fetched, backend, call, run };
}

describe('Warmer', () => {
  it('refreshes a hot key before it expires: every call after the first is a hit; a cold key is left to expire', async () => {
    const w = setup({ window: '10s', horizon: '60s', topK: 10, minFrequency: 2, budgetPercent: 100 });
    const answered: string[] = [];
    expect(await w.call('hot')).toBe('backend');
    expect(await w.call('cold')).toBe('backend');
    await w.run(60_000, 250, async () => {
      answered.push(await w.call('hot'));
    });
    expect(answered.filter((a) => a !== 'l1')).toEqual([]);
    expect(w.backend).toEqual(['hot', 'cold']);
    // Refreshed about once per TTL (10 s, refreshed at most TTL/4 = 2.5 s early): 6 to 8 in 60 s.
    const refreshes = w.fetched.filter((r) => r.body.toString() === 'hot').length;
    expect(refreshes).toBeGreaterThanOrEqual(6);
    expect(refreshes).toBeLessThanOrEqual(8);
    expect(w.fetched.some((r) => r.body.toString() === 'cold')).toBe(false);
    expect(w.fetched[0]).toMatchObject({ method: M, headers: { 'content-type': 'application/grpc' } });
    expect(await w.call('cold')).toBe('backend'); // expired: nobody kept it warm
    const c = w.pc.warmer?.counters();
    expect(c?.prefetched).toBe(refreshes);
    // Each refresh but the last was followed by a hit before the entry expired.
    expect(c?.prefetchHits).toBeGreaterThanOrEqual(refreshes - 1);
    const l1 = w.pc.counters().find((x) => x.tier === 'l1');
    expect(l1).toMatchObject({ prefetched: c?.prefetched, prefetchHits: c?.prefetchHits });
    await w.pc.close();
  });

  it('the budget: refreshes are at most budgetPercent % of the calls seen, the rest are skipped and counted', async () => {
    const w = setup({ window: '30s', horizon: '60s', topK: 50, minFrequency: 1, budgetPercent: 10 });
    let calls = 0;
    await w.run(60_000, 100, async () => {
      // 50 keys called round robin: each about 2 calls a second, all hot.
      await w.call(`k${calls % 50}`);
      calls++;
    });
    const c = w.pc.warmer?.counters();
    expect(w.fetched.length).toBeGreaterThan(0);
    expect(w.fetched.length).toBeLessThanOrEqual(Math.floor(0.1 * calls));
    expect(c?.budgetSkips).toBeGreaterThan(0);
    await w.pc.close();
  });

  it('no warming block: no warmer, plain LRU, counters 0', async () => {
    const w = setup(undefined);
    expect(w.pc.warmer).toBeUndefined();
    await w.call('a');
    await w.run(20_000, 1000, async () => void (await w.call('a')));
    expect(w.fetched).toEqual([]);
    expect(w.pc.counters().every((c) => c.prefetched === 0 && c.prefetchHits === 0)).toBe(true);
    await w.pc.close();
  });

  it('a prefetch counts one hit at most, and none when the key is not asked for before it expires', async () => {
    const w = setup({ window: '5s', horizon: '60s', topK: 10, minFrequency: 0.5, budgetPercent: 100 });
    await w.call('x');
    await w.call('x');
    await w.run(8000, 100); // refreshed once (at 7.5 s), nobody asks
    const c1 = w.pc.warmer?.counters();
    expect(c1?.prefetched).toBeGreaterThanOrEqual(1);
    expect(c1?.prefetchHits).toBe(0);
    expect(await w.call('x')).toBe('l1');
    expect(await w.call('x')).toBe('l1');
    expect(w.pc.warmer?.counters().prefetchHits).toBe(1);
    await w.pc.close();
  });

  it('a flush while a refresh is in flight: its answer is not stored, and the warmer carries on', async () => {
    const timers = new ManualTimers(1_000_000);
    const wall = () => WALL0 + timers.now();
    const l1 = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 100, now: () => timers.now() });
    const hot = new HotSet({ width: 1024, topK: 4, halfLifeMs: 10_000, now: () => timers.now() });
    const tiered = new TieredCache([l1], { wallNow: wall });
    const pending: Array<(a: Answer) => void> = [];
    const warmer = new Warmer({
      settings: warmingSettings({ topK: 4, minFrequency: 1, budgetPercent: 100 }),
      hot,
      tiered,
      l1,
      ttlFor: () => 10_000,
      shortestTtlMs: 10_000,
      fetch: () => new Promise<Answer>((r) => pending.push(r)),
      clock: timers,
      wallNow: wall,
      timers,
    });
    for (let i = 0; i < 3; i++)
      warmer.observe('a', () => ({ method: M, body: Buffer.from('a'), headers: {} }));
    const tick = warmer.tick();
    await settle();
    expect(pending).toHaveLength(1);
    await tiered.clear();
    warmer.reset();
    pending[0]?.({ code: 0, response: resp('from before the flush') });
    await tick;
    expect(l1.peek('a')).toBeUndefined();
    expect(warmer.counters().prefetched).toBe(0);
    timers.advance(10_000); // past the quiet time: the timer's tick tries again, and it is stored
    await settle();
    expect(pending).toHaveLength(2);
    pending[1]?.({ code: 0, response: resp('after') });
    await settle();
    expect(l1.peek('a')).toBeDefined();
    expect(warmer.counters().prefetched).toBe(1);
    warmer.close();
  });
});

describe('Warmer start: the published hot set', () => {
  it('seeds the sketch and fills L1 from the lower tier for the published keys; publishes its own', async () => {
    const timers = new ManualTimers(1_000_000);
    const wall = () => WALL0 + timers.now();
    const l1 = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 100, now: () => timers.now() });
    const l2 = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 100, now: () => timers.now() });
    const key = (n: number) => n.toString(16).padStart(64, '0');
    const seeder = new TieredCache([l2], { wallNow: wall });
    for (let i = 0; i < 5; i++) await seeder.fill(key(i), resp(`v${i}`), 30_000);
    let published: Array<{ key: string; estimate: number }> = [
      { key: key(0), estimate: 9 },
      { key: key(1), estimate: 5 },
      { key: key(4), estimate: 3 },
      { key: key(7), estimate: 3 }, // not in L2: nothing to fill
      { key: 'not-a-key', estimate: 3 }, // ignored
    ];
    const hotList: HotList = {
      publishHot: (entries) => {
        published = [...entries];
        return Promise.resolve();
      },
      readHot: (n) => Promise.resolve(published.slice(0, n)),
    };
    const settings = warmingSettings({ window: '10s', topK: 10, minFrequency: 1 });
    const hot = new HotSet({ width: 1024, topK: 10, halfLifeMs: 10_000, now: () => timers.now() });
    const tiered = new TieredCache([l1, l2], { wallNow: wall });
    const warmer = new Warmer({
      settings,
      hot,
      tiered,
      l1,
      ttlFor: () => 30_000,
      shortestTtlMs: 30_000,
      hotList,
      clock: timers,
      wallNow: wall,
      timers,
    });
    await warmer.started;
    expect([key(0), key(1), key(4)].map((k) => l1.peek(k) !== undefined)).toEqual([true, true, true]);
    expect(l1.peek(key(2))).toBeUndefined();
    expect(hot.estimate(key(0))).toBeCloseTo(9, 3);
    expect(warmer.counters().prefetched).toBe(3);
    // No lookups were counted: the fill is not a client's.
    expect(tiered.counters().map((c) => c.hits + c.misses)).toEqual([0, 0]);
    // Its first tick publishes its hot set (the seeded one, as nothing else was seen yet).
    await warmer.tick();
    expect(published.map((e) => e.key)).toEqual([key(0), key(1), key(4), key(7)]);
    warmer.close();
  });

  it('keeps no request for keys outside the top-K, and an answer that is not OK is not stored', async () => {
    const timers = new ManualTimers(1_000_000);
    const l1 = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 100, now: () => timers.now() });
    const hot = new HotSet({ width: 1024, topK: 1, halfLifeMs: 10_000, now: () => timers.now() });
    const tiered = new TieredCache([l1], { wallNow: () => WALL0 + timers.now() });
    const asked: string[] = [];
    const warmer = new Warmer({
      settings: warmingSettings({ topK: 1, minFrequency: 1, budgetPercent: 100 }),
      hot,
      tiered,
      l1,
      ttlFor: () => 10_000,
      shortestTtlMs: 10_000,
      fetch: (r): Promise<Answer> => {
        asked.push(r.body.toString());
        return Promise.resolve({ code: 14, response: resp('no') });
      },
      clock: timers,
      wallNow: () => WALL0 + timers.now(),
      timers,
    });
    const req = (s: string) => () => ({ method: M, body: Buffer.from(s), headers: {} });
    for (let i = 0; i < 5; i++) warmer.observe('a', req('a'));
    warmer.observe('b', req('b')); // not hot: its request is never built
    await warmer.tick();
    expect(asked).toEqual(['a']);
    expect(l1.peek('a')).toBeUndefined();
    expect(warmer.counters()).toMatchObject({ refreshFailures: 1, prefetched: 0 });
    warmer.close();
  });
});
