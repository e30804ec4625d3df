import { MemoryStore } from '../../../src/cache/l1-memory.js';
import { TieredCache, type Answer, type Loaded } from '../../../src/cache/tiered.js';
import { decodeEntry, encodeEntry } from '../../../src/cache/codec.js';
import { cacheError, cacheModeOf, type CacheStore, type CachedResponse } from '../../../src/cache/types.js';
import { deferred } from '../../support/wait.js';

/** The answer a caller got (a hit, a shared or its own load's), or a failed expectation. */
function answerOf(l: Loaded): Answer {
  if (!('answer' in l) || !l.answer) throw new Error(`no answer (${l.from})`);
  return l.answer;
}

const key = (n: number) => n.toString(16).padStart(64, '0');
const resp = (s: string): CachedResponse => ({
  headers: { 'content-type': 'application/grpc' },
  body: Buffer.from(s),
  trailers: { 'grpc-status': '0' },
});
const ok = (s: string): Answer => ({ code: 0, response: resp(s) });
const mem = (maxTtlMs?: number) => new MemoryStore({ maxBytes: 1 << 20, maxEntries: 100, maxTtlMs });

/** A store that always fails, as L2 does with Redis down. */
const broken: CacheStore = {
  tier: 'l2',
  get: () => Promise.reject(cacheError('down')),
  set: () => Promise.reject(cacheError('down')),
  delete: () => Promise.reject(cacheError('down')),
  clear: () => Promise.reject(cacheError('down')),
  stats: () => ({ evictions: 0, bytes: 0, entries: 0 }),
  close: () => Promise.resolve(),
};

describe('TieredCache', () => {
  it('reads top down, promotes a lower hit upward, and fills every tier', async () => {
    const wall = 1_000_000;
    const l1 = mem();
    const inner = mem();
    const l3: CacheStore = {
      tier: 'l3',
      get: (k) => inner.get(k),
      set: (k, v, ttl) => inner.set(k, v, ttl),
      delete: (k) => inner.delete(k),
      clear: () => inner.clear(),
      stats: () => inner.stats(),
      close: () => inner.close(),
    };
    const t = new TieredCache([l1, l3], { wallNow: () => wall });
    await l3.set(key(1), encodeEntry({ response: resp('deep'), expiresAtMs: wall + 5000 }), 5000);
    const hit = await t.lookup(key(1));
    expect(hit?.tier).toBe('l3');
    expect(hit?.response.body.toString()).toBe('deep');
    await Promise.resolve();
    const promoted = await l1.get(key(1));
    expect(promoted && decodeEntry(promoted).expiresAtMs).toBe(wall + 5000); // the original expiry
    expect((await t.lookup(key(1)))?.tier).toBe('l1');
    await t.fill(key(2), resp('new'), 1000);
    expect(await l1.get(key(2))).toBeDefined();
    expect(await l3.get(key(2))).toBeDefined();
    expect(t.counters().map((c) => [c.tier, c.hits, c.misses, c.fills])).toEqual([
      ['l1', 1, 1, 2],
      ['l3', 1, 0, 1],
    ]);
  });

  it('an entry past its expiry is a miss even if a tier still holds it', async () => {
    let wall = 0;
    const l1 = mem();
    const t = new TieredCache([l1], { wallNow: () => wall });
    await t.fill(key(1), resp('x'), 100);
    wall = 101;
    expect(await t.lookup(key(1))).toBeUndefined();
  });

  it('a failing tier reads as a miss and is counted as an error', async () => {
    const l1 = mem();
    const results: string[] = [];
    const t = new TieredCache([l1, broken], { onLookup: (tier, r) => results.push(`${tier}:${r}`) });
    expect(await t.getOrLoad(key(1), 1000, () => Promise.resolve(ok('b')))).toMatchObject({
      from: 'load',
      answer: { code: 0 },
    });
    expect(results).toEqual(['l1:miss', 'l2:error']);
    expect(t.counters()[1]).toMatchObject({ errors: 2 }); // the lookup and the fill
    expect(await t.getOrLoad(key(1), 1000, () => Promise.reject(new Error('no')))).toMatchObject({
      from: 'hit',
      tier: 'l1',
    });
  });

  it('concurrent misses for one key make one load; all get its answer', async () => {
    const t = new TieredCache([mem()]);
    let loads = 0;
    const started = deferred();
    const gate = deferred();
    const load = async () => {
      loads++;
      started.resolve();
      await gate.promise;
      return ok('once');
    };
    const all = Array.from({ length: 50 }, () => t.getOrLoad(key(1), 1000, load));
    await started.promise; // the leader's load is under way, every other caller joined its flight
    expect(t.inflight).toBe(1);
    gate.resolve();
    const got = await Promise.all(all);
    expect(loads).toBe(1);
    expect(new Set(got.map((g) => answerOf(g).response.body.toString()))).toEqual(new Set(['once']));
    expect(got.filter((g) => g.from === 'shared')).toHaveLength(49);
    expect(t.inflight).toBe(0);
  });

  it('errors and non-OK answers are shared with waiters but never stored', async () => {
    const t = new TieredCache([mem()]);
    let loads = 0;
    // Each load answers only once all five callers have asked (the gate opens after they have).
    const failGate = deferred();
    const failing = async () => {
      loads++;
      await failGate.promise;
      throw new Error('backend down');
    };
    const failed = Promise.allSettled(Array.from({ length: 5 }, () => t.getOrLoad(key(1), 1000, failing)));
    failGate.resolve();
    const r = await failed;
    expect(r.every((x) => x.status === 'rejected')).toBe(true);
    expect(loads).toBe(1);
    const notFoundGate = deferred();
    const notFound = async (): Promise<Answer> => {
      loads++;
      await notFoundGate.promise;
      return { code: 5, response: resp('') };
    };
    const asked = Promise.all(Array.from({ length: 5 }, () => t.getOrLoad(key(2), 1000, notFound)));
    notFoundGate.resolve();
    const codes = await asked;
    expect(codes.map((c) => answerOf(c).code)).toEqual([5, 5, 5, 5, 5]);
    expect(loads).toBe(2);
    await t.getOrLoad(key(2), 1000, notFound);
    expect(loads).toBe(3);
    expect(t.counters()[0]?.fills).toBe(0);
  });

  it('bypass neither reads nor writes; refresh skips reads and overwrites', async () => {
    const t = new TieredCache([mem()]);
    await t.fill(key(1), resp('old'), 1000);
    expect(
      answerOf(
        await t.getOrLoad(key(1), 1000, () => Promise.resolve(ok('by')), 'bypass'),
      ).response.body.toString(),
    ).toBe('by');
    expect((await t.lookup(key(1)))?.response.body.toString()).toBe('old');
    const b = await t.begin(key(1), 'refresh', 1000);
    expect(b.kind).toBe('lead');
    if (b.kind === 'lead') {
      b.flight.complete(ok('new'));
      await b.flight.filled;
    }
    expect((await t.lookup(key(1)))?.response.body.toString()).toBe('new');
  });

  it('clear empties every tier, counts a failing tier as an error without rejecting, and a flight from before it fills nothing', async () => {
    const l1 = mem();
    const t = new TieredCache([l1, broken]);
    await t.fill(key(1), resp('a'), 10_000);
    const b = await t.begin(key(2), 'normal', 10_000);
    expect(b.kind).toBe('lead');
    const errorsBefore = t.counters()[1]?.errors ?? 0;
    await expect(t.clear()).resolves.toBeUndefined();
    expect(t.counters()[1]?.errors).toBe(errorsBefore + 1);
    expect(await l1.get(key(1))).toBeUndefined();
    if (b.kind !== 'lead') return;
    b.flight.complete(ok('stale'));
    await b.flight.filled;
    expect(await l1.get(key(2))).toBeUndefined();
    await t.getOrLoad(key(3), 10_000, () => Promise.resolve(ok('new')));
    expect(await l1.get(key(3))).toBeDefined(); // later flights fill as usual
  });

  it('a tier max TTL caps what it keeps', async () => {
    // lru-cache treats a start time of 0 as "no TTL": start the clocks elsewhere.
    let wall = 1000;
    let mono = 1000;
    const l1 = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 10, maxTtlMs: 100, now: () => mono });
    const t = new TieredCache([l1], { wallNow: () => wall });
    await t.fill(key(1), resp('x'), 10_000);
    mono = wall = 1101;
    expect(await l1.get(key(1))).toBeUndefined();
  });
});

describe('codec and mode', () => {
  it('round-trips a Trailers-Only response and rejects foreign bytes', () => {
    const e = {
      response: { ...resp(''), trailersOnly: true, headers: { 'grpc-status': '0', x: ['a', 'b'] } },
      expiresAtMs: 42,
    };
    expect(decodeEntry(encodeEntry(e))).toEqual(e);
    expect(() => decodeEntry(Buffer.from('nope'))).toThrow(/not a cache entry/);
  });

  it('reads x-sibyl-cache', () => {
    expect(cacheModeOf('bypass')).toBe('bypass');
    expect(cacheModeOf(' Refresh ')).toBe('refresh');
    expect(cacheModeOf(undefined)).toBe('normal');
    expect(cacheModeOf('whatever')).toBe('normal');
  });
});
