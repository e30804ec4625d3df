import { Redis } from 'ioredis';
import { createConnection } from 'node:net';
import { startRedisServer } from '../../../src/util/redis-server.js';
import { isSibylError } from '../../../src/util/errors.js';

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

test('starts a private redis-server that answers, and stops it', async () => {
  const r = await startRedisServer();
  const client = new Redis(r.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');
  } finally {
    client.disconnect();
    await r.stop();
  }
  expect(await connects(r.port)).toBe(false);
});

test('a detached server is still awaited by stop() (a cleanup must not end half-way)', async () => {
  const r = await startRedisServer({ detached: true });
  expect(await connects(r.port)).toBe(true);
  await r.stop();
  expect(await connects(r.port)).toBe(false);
});

test('a missing binary is a clear ERR_PROCESS error', async () => {
  const e = await startRedisServer({ binary: '/nonexistent/redis-server' }).catch((x: unknown) => x);
  expect(isSibylError(e, 'ERR_PROCESS')).toBe(true);
  expect(String((e as Error).message)).toMatch(/system-deps/);
});
