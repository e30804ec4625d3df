import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { PoolCache } from '../../../src/cache/pool-cache.js';
import type { CachedResponse } from '../../../src/cache/types.js';
import { quiet } from '../../support/grpc.js';
import { freePort } from '../../support/wait.js';

// PoolCache.flush against the real stores: L1 in memory, L2 on the shared test Redis, L3 on a temp
// folder. Two caches of one pool stand for two routers sharing Redis.
const REDIS = process.env.SIBYL_TEST_REDIS_URL as string;
const ECHO = '/sibyl.demo.v1.Demo/Echo';

const resp = (s: string): CachedResponse => ({
  headers: { 'content-type': 'application/grpc' },
  body: Buffer.from(s),
  trailers: { 'grpc-status': '0' },
});
const key = (n: number) => n.toString(16).padStart(64, '0');

const open: Array<PoolCache | Redis> = [];
afterEach(async () => {
  for (const c of open.splice(0)) {
    if (c instanceof PoolCache) await c.close();
    else c.disconnect();
  }
});

function cache(pool: string, redisUrl = REDIS): PoolCache {
  const c = new PoolCache(
    pool,
    {
      methods: [{ method: ECHO, ttl: '60s' }],
      l2: { redis: { url: redisUrl }, timeout: '500ms' },
      l3: { path: mkdtempSync(join(tmpdir(), 'sibyl-flush-')) },
    },
    { log: quiet() },
  );
  open.push(c);
  return c;
}

async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

describe('PoolCache.flush', () => {
  it("empties L1 and L3 and deletes the pool's L2 keys (more than one SCAN batch), nothing else", async () => {
    const pool = `flush-${randomUUID().slice(0, 8)}`;
    const other = `${pool}-other`;
    const a = cache(pool);
    const b = cache(pool);
    const c = cache(other);
    await Promise.all([a, b, c].map((x) => x.l2?.ready(10_000)));
    const n = 1200; // over two batches of the clear's SCAN
    for (let i = 0; i < n; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => a.tiered.fill(key(i + j), resp(`v${i + j}`), 60_000)),
      );
    }
    await b.tiered.fill(key(99_999), resp('b'), 60_000);
    await c.tiered.fill(key(1), resp('other pool'), 60_000);
    const redis = new Redis(REDIS);
    open.push(redis);
    expect((await keysUnder(redis, `sibyl:cache:${pool}:`)).length).toBe(n + 1);
    const l3 = a.l3 as NonNullable<typeof a.l3>;
    expect(l3.stats().entries).toBe(n);

    await a.flush();

    expect(await keysUnder(redis, `sibyl:cache:${pool}:`)).toEqual([]);
    expect((await keysUnder(redis, `sibyl:cache:${other}:`)).length).toBe(1);
    const l1 = a.tierCounters().find((t) => t.tier === 'l1');
    expect(l1).toMatchObject({ entries: 0, bytes: 0 });
    expect(l3.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(readdirSync(l3.dir)).toEqual([]);
    expect(await a.tiered.lookup(key(0))).toBeUndefined();
    // The other router's L2 copy is gone too (its own L1 and L3 are its own to flush).
    const bl2 = b.l2 as NonNullable<typeof b.l2>;
    expect(await bl2.get(key(99_999))).toBeUndefined();
    expect(await c.tiered.lookup(key(1))).toMatchObject({ tier: 'l1' });
    expect(a.tierCounters().every((t) => t.errors === 0)).toBe(true);
  });

  it('a dead Redis: flush still empties L1 and L3, resolves, and counts an L2 error', async () => {
    const port = await freePort(); // nothing listens there
    const a = cache(`dead-${randomUUID().slice(0, 8)}`, `redis://127.0.0.1:${port}`);
    await a.tiered.fill(key(1), resp('x'), 60_000);
    await expect(a.flush()).resolves.toBeUndefined();
    const byTier = Object.fromEntries(a.tierCounters().map((t) => [t.tier, t]));
    expect(byTier.l2?.errors).toBeGreaterThanOrEqual(2); // the fill and the flush
    expect(byTier.l1?.entries).toBe(0);
    expect(byTier.l3?.entries).toBe(0);
  });
});
