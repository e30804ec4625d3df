import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { MemoryStore } from '../../../src/cache/l1-memory.js';
import { RedisStore } from '../../../src/cache/l2-redis.js';
import { DiskStore } from '../../../src/cache/l3-disk.js';
import type { CacheStore } from '../../../src/cache/types.js';
import { isSibylError } from '../../../src/util/errors.js';
import { waitFor } from '../../support/wait.js';

// One conformance suite for every store (bench/scenarios/README.md): L1 in memory, L2 on a real Redis (a
// redis-server of this suite's own), L3 on a temp folder.
const key = (n: number) => n.toString(16).padStart(64, '0');

let redis: ChildProcess | undefined;
let redisUrl = '';
beforeAll(async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  redisUrl = `redis://127.0.0.1:${port}`;
});
afterAll(() => {
  redis?.kill('SIGKILL');
});

/**
 * A store under test, and how time passes for it: L1 and L3 take a clock, which the test moves; Redis
 * keeps its own, so for L2 the test waits for what that clock does.
 */
interface Subject {
  store: CacheStore;
  pass?: (ms: number) => void;
}

const factories: Array<[string, () => Promise<Subject>]> = [
  [
    'L1 memory',
    () => {
      let t = 1000; // not 0: lru-cache reads a start time of 0 as "no TTL"
      const store = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 1000, now: () => t });
      return Promise.resolve({ store, pass: (ms) => (t += ms) });
    },
  ],
  [
    'L2 redis',
    async () => {
      const s = new RedisStore({ url: redisUrl, keyPrefix: `t:${Math.random()}:`, timeoutMs: 500 });
      await s.ready(10_000);
      return { store: s };
    },
  ],
  [
    'L3 disk',
    () => {
      let wall = 1_700_000_000_000;
      const store = new DiskStore({
        path: mkdtempSync(join(tmpdir(), 'sibyl-l3u-')),
        maxBytes: 1 << 20,
        wallNow: () => wall,
      });
      return Promise.resolve({ store, pass: (ms) => (wall += ms) });
    },
  ],
];

describe.each(factories)('CacheStore conformance: %s', (_name, make) => {
  let store: CacheStore;
  let pass: Subject['pass'];
  beforeEach(async () => {
    ({ store, pass } = await make());
  });
  afterEach(() => store.close());

  it('a miss is undefined; set then get returns the same bytes; delete removes', async () => {
    expect(await store.get(key(1))).toBeUndefined();
    const v = Buffer.from([0, 1, 2, 255, 0, 13, 10]);
    await store.set(key(1), v, 10_000);
    expect(await store.get(key(1))).toEqual(v);
    await store.delete(key(1));
    expect(await store.get(key(1))).toBeUndefined();
  });

  it('binary values of every byte and an empty value survive', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await store.set(key(2), all, 10_000);
    await store.set(key(3), Buffer.alloc(0), 10_000);
    expect(await store.get(key(2))).toEqual(all);
    expect(await store.get(key(3))).toEqual(Buffer.alloc(0));
  });

  it('a set replaces the value', async () => {
    await store.set(key(4), Buffer.from('a'), 10_000);
    await store.set(key(4), Buffer.from('bb'), 10_000);
    expect((await store.get(key(4)))?.toString()).toBe('bb');
  });

  it('clear drops every entry, and the store keeps working after it', async () => {
    for (let i = 10; i < 15; i++) await store.set(key(i), Buffer.from(`v${i}`), 10_000);
    await store.clear();
    for (let i = 10; i < 15; i++) expect(await store.get(key(i))).toBeUndefined();
    await store.set(key(10), Buffer.from('again'), 10_000);
    expect((await store.get(key(10)))?.toString()).toBe('again');
  });

  it('an entry is gone after its TTL', async () => {
    const ttlMs = 1000;
    await store.set(key(5), Buffer.from('x'), ttlMs);
    expect(await store.get(key(5))).toBeDefined();
    if (pass) {
      pass(ttlMs - 1);
      expect(await store.get(key(5))).toBeDefined();
      pass(2);
      expect(await store.get(key(5))).toBeUndefined();
    } else {
      // Redis expires the key (SET … PX) on its own clock.
      await waitFor(async () => (await store.get(key(5))) === undefined, {
        what: 'the entry to expire',
        timeoutMs: 10_000,
        intervalMs: 50,
      });
    }
  });
});

describe('L1 memory bounds', () => {
  it('evicts the least recently used by bytes and by entries', async () => {
    const s = new MemoryStore({ maxBytes: 3 * (100 + 64), maxEntries: 10 });
    for (let i = 0; i < 3; i++) await s.set(key(i), Buffer.alloc(100), 10_000);
    await s.get(key(0)); // 0 is now most recent; 1 goes first
    await s.set(key(3), Buffer.alloc(100), 10_000);
    expect(await s.get(key(1))).toBeUndefined();
    expect(await s.get(key(0))).toBeDefined();
    expect(s.stats()).toMatchObject({ evictions: 1, entries: 3, bytes: 3 * 164 });
    const e = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 2 });
    for (let i = 0; i < 3; i++) await e.set(key(i), Buffer.alloc(1), 10_000);
    expect(e.stats()).toMatchObject({ entries: 2, evictions: 1 });
  });

  it('TTLs follow the injected clock', async () => {
    let t = 1000;
    const s = new MemoryStore({ maxBytes: 1 << 20, maxEntries: 10, now: () => t });
    await s.set(key(1), Buffer.from('x'), 500);
    t += 499;
    expect(await s.get(key(1))).toBeDefined();
    t += 2;
    expect(await s.get(key(1))).toBeUndefined();
  });
});

describe('L2 redis failures', () => {
  it('a dead Redis fails fast with ERR_CACHE, and the breaker then refuses without trying', async () => {
    let t = 0;
    // A long command timeout, so "fast" means "without waiting for it" (no offline queue holds the
    // command until a reconnect), with room for a loaded machine: half of it.
    const timeoutMs = 10_000;
    const s = new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:', timeoutMs, now: () => t });
    try {
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        const e = await s.get(key(1)).then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(isSibylError(e, 'ERR_CACHE')).toBe(true);
        expect(performance.now() - started).toBeLessThan(timeoutMs / 2);
      }
      expect(s.breakerState).toBe('Open');
      await expect(s.set(key(1), Buffer.from('x'), 1000)).rejects.toThrow(/breaker Open/);
      t += 1000;
      expect(s.breakerState).toBe('HalfOpen');
    } finally {
      await s.close();
    }
  });
});

describe('L3 disk', () => {
  it('rebuilds its index from the folder, skips and deletes a corrupted file, and removes temp files', async () => {
    const path = mkdtempSync(join(tmpdir(), 'sibyl-l3u-'));
    const a = new DiskStore({ path, maxBytes: 1 << 20 });
    await a.set(key(1), Buffer.from('one'), 60_000);
    await a.set(key(2), Buffer.from('two'), 60_000);
    writeFileSync(join(path, `${key(9)}.123.0.tmp`), 'half a write');
    writeFileSync(join(path, key(2)), Buffer.from('SBL3 torn'));
    const b = new DiskStore({ path, maxBytes: 1 << 20 });
    await b.ready;
    expect(b.stats().entries).toBe(2);
    expect(readdirSync(path).some((f) => f.endsWith('.tmp'))).toBe(false);
    expect((await b.get(key(1)))?.toString()).toBe('one');
    expect(await b.get(key(2))).toBeUndefined();
    expect(b.corrupted).toBe(1);
    expect(readdirSync(path)).toEqual([key(1)]);
  });

  it('expiry holds across a restart (wall clock), and the byte bound evicts the least recently used', async () => {
    const path = mkdtempSync(join(tmpdir(), 'sibyl-l3u-'));
    let wall = 1_000_000;
    const a = new DiskStore({ path, maxBytes: 1 << 20, wallNow: () => wall });
    await a.set(key(1), Buffer.from('x'), 1000);
    wall += 1001;
    const b = new DiskStore({ path, maxBytes: 1 << 20, wallNow: () => wall });
    expect(await b.get(key(1))).toBeUndefined();
    expect(readdirSync(path)).toEqual([]);

    const fileSize = 48 + 100;
    const c = new DiskStore({ path, maxBytes: 2 * fileSize });
    await c.set(key(1), Buffer.alloc(100), 60_000);
    await c.set(key(2), Buffer.alloc(100), 60_000);
    await c.get(key(1));
    await c.set(key(3), Buffer.alloc(100), 60_000);
    expect(c.stats()).toMatchObject({ entries: 2, bytes: 2 * fileSize, evictions: 1 });
    expect(await c.get(key(2))).toBeUndefined();
    expect(await c.get(key(1))).toBeDefined();
  });
});

describe('L1 TinyLFU admission', () => {
  it('a new key that would evict enters only if asked for more often than the victim: the least frequent of the LRU end, an expired one first', async () => {
    let t = 1000; // not 0: lru-cache reads a start time of 0 as "no TTL"
    const freq = new Map<string, number>();
    const s = new MemoryStore({
      maxBytes: 1 << 20,
      maxEntries: 2,
      now: () => t,
      frequency: (k) => freq.get(k) ?? 0,
    });
    freq.set(key(1), 5).set(key(2), 1).set(key(3), 3).set(key(4), 0);
    await s.set(key(1), Buffer.from('1'), 10_000);
    await s.set(key(2), Buffer.from('2'), 10_000); // room: admitted whatever its frequency
    // key(1) is the least recently used, but key(2) the least frequent: key(2) is the victim.
    await s.set(key(3), Buffer.from('3'), 1000); // 3 > 1: admitted
    expect(await s.get(key(2))).toBeUndefined();
    expect(await s.get(key(1))).toBeDefined();
    expect(await s.get(key(3))).toBeDefined();
    expect(s.stats()).toMatchObject({ entries: 2, evictions: 1 });
    await s.set(key(4), Buffer.from('4'), 10_000); // 0 < 3 (the victim now): declined
    expect(await s.get(key(4))).toBeUndefined();
    expect(s.rejections).toBe(1);
    expect(s.wouldAdmit(key(4), 1)).toBe(false);
    await s.set(key(3), Buffer.from('33'), 1000); // an update is never refused
    expect((await s.get(key(3)))?.toString()).toBe('33');
    t += 1001; // key(3) has expired: it goes first, whatever anyone's frequency
    expect(s.wouldAdmit(key(4), 1)).toBe(true);
    await s.set(key(4), Buffer.from('4'), 10_000);
    expect(await s.get(key(4))).toBeDefined();
    expect(await s.get(key(1))).toBeDefined();
  });
});
