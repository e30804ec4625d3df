import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisAdmin, type RedisTarget } from '../../../src/operator/cache-redis.js';
import { systemClock } from '../../../src/util/clock.js';
import { makeLogger } from '../../../src/util/log.js';
import { freePort, waitFor } from '../../support/wait.js';

/** The operator's Redis side against the real test Redis: deleting a prefix, and probing. */
const REDIS = process.env.SIBYL_TEST_REDIS_URL as string;
const log = makeLogger('test', 'silent');
let redis: Redis;
const admins: RedisAdmin[] = [];
const admin = (o: Partial<ConstructorParameters<typeof RedisAdmin>[0]> = {}) => {
  const a = new RedisAdmin({ clock: systemClock, log, timeoutMs: 500, ...o });
  admins.push(a);
  return a;
};

beforeAll(() => {
  redis = new Redis(REDIS);
});
afterAll(async () => {
  for (const a of admins) await a.close();
  redis.disconnect();
});

it('deletes every key under a prefix across SCAN batches, and only those (glob characters taken literally)', async () => {
  const base = `sibyl:cache:t-${randomUUID()}/`;
  const prefix = `${base}p[1]*:`;
  const p = redis.pipeline();
  for (let i = 0; i < 1200; i++) p.set(`${prefix}${i}`, 'v', 'EX', 60);
  p.set(`${base}p1x:0`, 'keep', 'EX', 60); // what p[1]* would match as a pattern
  p.set(`${base}p[1]*x:0`, 'keep', 'EX', 60); // a neighbouring prefix
  await p.exec();
  const target: RedisTarget = { url: REDIS, mode: 'Standalone' };
  expect(await admin().deletePrefix(target, prefix, 200)).toBe(1200);
  expect(await redis.get(`${base}p1x:0`)).toBe('keep');
  expect(await redis.get(`${base}p[1]*x:0`)).toBe('keep');
  expect((await redis.scan('0', 'MATCH', `${base}*`, 'COUNT', 5000))[1].sort()).toEqual(
    [`${base}p1x:0`, `${base}p[1]*x:0`].sort(),
  );
});

it('reachability answers at once and probes in the background; a dead port is False naming the error', async () => {
  const changes: string[] = [];
  const a = admin({ probeEveryMs: 60_000, onChange: (t) => changes.push(t.url) });
  const up: RedisTarget = { url: REDIS, mode: 'Standalone' };
  expect(a.reachability(up).state).toBe('Unknown');
  await waitFor(() => a.reachability(up).state === 'True', { what: 'PONG' });
  expect(changes).toEqual([REDIS]);

  const dead: RedisTarget = { url: `redis://user:secret@127.0.0.1:${await freePort()}`, mode: 'Standalone' };
  const r = await a.probeNow(dead);
  expect(r.state).toBe('False');
  expect(r.message).toMatch(/ECONNREFUSED|not reachable within 500 ms/);
  expect(r.message).not.toContain('secret'); // credentials never reach status
  await expect(a.deletePrefix(dead, 'sibyl:cache:x:')).rejects.toThrow(/not reachable/);
});
