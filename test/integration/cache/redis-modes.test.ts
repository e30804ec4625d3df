import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { RedisStore } from '../../../src/cache/l2-redis.js';
import { freePort } from '../../../src/util/redis-server.js';
import { waitFor } from '../../support/wait.js';

/**
 * L2 in the two Redis topologies besides a standalone server, each real: a master watched by a
 * Sentinel (the store is given the Sentinel's address and the master group's name), and a three-master
 * Cluster (keys spread over every master's hash slots, so a flush must SCAN each of them).
 */
const dir = mkdtempSync(join(tmpdir(), 'sibyl-redis-modes-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function server(args: string[]): ChildProcess {
  const c = spawn('redis-server', args, { stdio: 'ignore' });
  children.push(c);
  return c;
}

const cli = (port: number, ...args: string[]) =>
  spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();

/** What every mode must do: binary values with TTLs, deletes, the hot set, and a flush of one prefix. */
async function exercise(store: RedisStore, other: RedisStore): Promise<void> {
  await store.ready(10_000);
  await other.ready(10_000);
  const value = Buffer.from([0, 255, 1, 254, 10, 13]);
  await store.set('aa01', value, 60_000);
  expect(await store.get('aa01')).toEqual(value);
  await store.set('aa02', Buffer.from('short'), 1);
  // Redis expires it (PX 1) on its own clock.
  await waitFor(async () => (await store.get('aa02')) === undefined, {
    what: 'the 1 ms entry to expire',
    intervalMs: 10,
  });
  await store.delete('aa01');
  expect(await store.get('aa01')).toBeUndefined();

  await store.publishHot(
    [
      { key: 'k1', estimate: 9 },
      { key: 'k2', estimate: 4 },
    ],
    60_000,
  );
  expect(await store.readHot(10)).toEqual([
    { key: 'k1', estimate: 9 },
    { key: 'k2', estimate: 4 },
  ]);

  const keys = Array.from({ length: 300 }, (_, i) => i.toString(16).padStart(4, '0'));
  await Promise.all(keys.map((k) => store.set(k, Buffer.from(k), 60_000)));
  await Promise.all(keys.slice(0, 20).map((k) => other.set(k, Buffer.from('other'), 60_000)));
  await store.clear();
  for (const k of keys.slice(0, 40)) expect(await store.get(k)).toBeUndefined();
  // Another prefix (another pool's cache) is untouched.
  for (const k of keys.slice(0, 20)) expect(await other.get(k)).toEqual(Buffer.from('other'));
}

test('Sentinel mode: the store finds the master through the Sentinel', async () => {
  const masterPort = await freePort();
  const sentinelPort = await freePort();
  server(['--port', String(masterPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await waitFor(() => cli(masterPort, 'ping') === 'PONG', { what: 'the master' });
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor shop 127.0.0.1 ${masterPort} 1\n`,
  );
  server([conf, '--sentinel']);
  await waitFor(
    () => cli(sentinelPort, 'sentinel', 'get-master-addr-by-name', 'shop').includes(String(masterPort)),
    { what: 'the Sentinel to monitor the master' },
  );
  const url = `redis://127.0.0.1:${sentinelPort}`;
  const store = new RedisStore({
    url,
    mode: 'Sentinel',
    sentinelName: 'shop',
    keyPrefix: 'sibyl:cache:a/s:',
    timeoutMs: 500,
  });
  const other = new RedisStore({
    url,
    mode: 'Sentinel',
    sentinelName: 'shop',
    keyPrefix: 'sibyl:cache:b/s:',
    timeoutMs: 500,
  });
  try {
    await exercise(store, other);
    // The data is on the master the Sentinel named.
    const direct = new Redis({ port: masterPort, host: '127.0.0.1', lazyConnect: true });
    await direct.connect();
    expect(await direct.exists('sibyl:cache:b/s:0000')).toBe(1);
    direct.disconnect();
  } finally {
    await store.close();
    await other.close();
  }
});

test('Cluster mode: keys spread over three masters, and a flush reaches all of them', async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  for (const p of ports) {
    server([
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${p}.conf`),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
  }
  for (const p of ports) await waitFor(() => cli(p, 'ping') === 'PONG', { what: `node ${p}` });
  const created = spawnSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { encoding: 'utf8' },
  );
  expect(created.status).toBe(0);
  await waitFor(() => ports.every((p) => cli(p, 'cluster', 'info').includes('cluster_state:ok')), {
    what: 'cluster_state:ok',
  });
  const url = `redis://127.0.0.1:${ports[0]}`;
  const store = new RedisStore({ url, mode: 'Cluster', keyPrefix: 'sibyl:cache:a/s:', timeoutMs: 500 });
  const other = new RedisStore({ url, mode: 'Cluster', keyPrefix: 'sibyl:cache:b/s:', timeoutMs: 500 });
  try {
    expect(store.client).toBeInstanceOf(Cluster);
    await store.ready(10_000);
    // Before the flush, the prefix's keys really live on more than one master.
    const keys = Array.from({ length: 60 }, (_, i) => `f${i.toString(16).padStart(3, '0')}`);
    await Promise.all(keys.map((k) => store.set(k, Buffer.from(k), 60_000)));
    const perNode = ports.map((p) => Number(cli(p, 'dbsize')));
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThan(1);
    await exercise(store, other);
    // Left: the other prefix's 20 keys (the flushed prefix's hot set went with its entries).
    expect(ports.map((p) => Number(cli(p, 'dbsize'))).reduce((a, b) => a + b, 0)).toBe(20);
  } finally {
    await store.close();
    await other.close();
  }
});
