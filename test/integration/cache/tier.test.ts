import * as k8s from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Backend } from '../../../src/tools/backend/server.js';
import type { ControlClient } from '../../../src/control/client.js';
import { linkRouter } from '../../../src/router/control-link.js';
import type { Operator } from '../../../src/operator/operator.js';
import { Router } from '../../../src/router/router.js';
import { makeLogger } from '../../../src/util/log.js';
import { demoClient, echo, quiet, startBackends, type DemoClient } from '../../support/grpc.js';
import { createNamespace, kubeConfig, kubectl, kubectlOk } from '../../support/kube.js';
import { createPool, createService, listEvents, putSlices } from '../../support/objects.js';
import { reconciles, startOperator } from '../../support/operator.js';
import { makeServingCert } from '../../support/tls.js';
import { waitFor } from '../../support/wait.js';
import { routerAccountToken } from '../../support/token.js';

/**
 * CacheTier end to end on a real API server, a real Redis, a real operator and a real router subscribed
 * over the control stream: the tier's config reaches the router, status shows the routers' hit ratios
 * and Redis reachability, the flush annotation empties L2 and the router's L1, deleting the tier deletes
 * its L2 keys, and a Secret that is missing makes the tier Invalid.
 */
const ECHO = '/sibyl.demo.v1.Demo/Echo';
const REDIS = process.env.SIBYL_TEST_REDIS_URL as string;
const tls = makeServingCert();

let ns: string;
let op: Operator;
let backend: Backend;
let router: Router;
let link: ControlClient;
let client: DemoClient;
let redis: Redis;
const custom = () => kubeConfig().makeApiClient(k8s.CustomObjectsApi);

interface TierView {
  metadata: { name: string; finalizers?: string[] };
  status?: {
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    pools?: string[];
    hitRatio?: { l1: number; l2: number; l3: number; overall: number };
    hitRatioSummary?: string;
    entries?: number;
    routers?: number;
    flushedToken?: string;
  };
}

const tierRef = (name: string) => ({
  group: 'sibyl.dev',
  version: 'v1alpha1',
  namespace: ns,
  plural: 'cachetiers',
  name,
});
const createTier = (name: string, spec: object) =>
  custom().createNamespacedCustomObject({
    ...tierRef(name),
    body: { apiVersion: 'sibyl.dev/v1alpha1', kind: 'CacheTier', metadata: { name }, spec },
  });
const getTier = async (name: string) => (await custom().getNamespacedCustomObject(tierRef(name))) as TierView;
const cond = (t: TierView, type: string) => t.status?.conditions?.find((c) => c.type === type);

/** The pool's L2 keys in the shared Redis (the routers' prefix, sibyl:cache:<ns>/<pool>:). */
async function l2Keys(pool: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `sibyl:cache:${ns}/${pool}:*`, 'COUNT', 500);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

async function backendCalls(): Promise<number> {
  let n = 0;
  for (const v of (await backend.metrics.requests.get()).values) if (v.labels.method === 'Echo') n += v.value;
  return n;
}

function startOp(): Promise<Operator> {
  return startOperator(ns, {
    statusIntervalMs: 300,
    cache: { probeEveryMs: 500, redisTimeoutMs: 1000 },
    control: {
      addr: `127.0.0.1:${op?.controlPort ?? 0}`,
      tls: { cert: tls.cert, key: tls.key },
      allowedRouters: [`${ns}/router`],
      pushIntervalMs: 200,
      reportIntervalMs: 300,
    },
  });
}

beforeAll(async () => {
  ns = await createNamespace('cachetier');
  redis = new Redis(REDIS);
  const token = await routerAccountToken(ns);
  [backend] = (await startBackends(1)) as [Backend];
  await createService(ns, 'shop');
  await putSlices(ns, 'shop', [{ port: backend.port, pod: backend.name }]);
  await createPool(ns, 'shop', {
    service: { name: 'shop', port: 'grpc' },
    match: { services: ['sibyl.demo.v1.Demo'] },
    balancing: { policy: 'RoundRobin' },
  });
  // A second pool (static endpoints), for the tier whose Secret is missing.
  await createPool(ns, 'side', {
    endpoints: [{ address: `127.0.0.1:${backend.port}` }],
    match: { services: ['sibyl.demo.v1.Side'] },
    balancing: { policy: 'RoundRobin' },
  });
  op = await startOp();
  router = await Router.start({ defaultMetrics: false, log: quiet() });
  link = linkRouter(router, {
    address: `localhost:${op.controlPort}`,
    ca: tls.ca,
    token: async () => token,
    routerId: 'r1',
    namespace: ns,
    version: 'test',
    log: makeLogger('router', 'silent'),
  });
  client = demoClient(router.address);
  await waitFor(() => link.version > 0, { what: 'the router to apply a table' });
});

afterAll(async () => {
  client?.close();
  link?.stop();
  await router?.close();
  await op?.stop();
  await backend?.stop(0);
  redis?.disconnect();
});

it("a CacheTier's config reaches the router: repeated identical calls reach the backend once", async () => {
  await createTier('shop-cache', {
    pools: ['shop'],
    methods: [{ method: ECHO, ttl: '5m' }],
    l2: { redis: { url: REDIS }, timeout: '500ms' },
  });
  const cache = await waitFor(() => router.poolCache(`${ns}/shop`), {
    what: 'the router to build the cache',
  });
  await cache.l2?.ready();
  const req = { message: randomUUID(), responseSize: 32 };
  const before = await backendCalls();
  for (let i = 0; i < 5; i++) expect((await echo(client, req)).error).toBeUndefined();
  expect((await backendCalls()) - before).toBe(1);
  await waitFor(async () => (await l2Keys('shop')).length > 0, { what: 'the L2 fill' });

  const t = await waitFor(
    async () => {
      await echo(client, req); // a hit: keeps lookups in the status window
      const v = await getTier('shop-cache');
      return (v.status?.hitRatio?.overall ?? 0) > 0 && cond(v, 'RedisReachable')?.status === 'True' && v;
    },
    { what: 'hit ratios and RedisReachable=True in status' },
  );
  expect(cond(t, 'Ready')).toMatchObject({ status: 'True', message: 'caching for 1 pool: shop' });
  expect((await backendCalls()) - before).toBe(1);
  expect(t.status?.pools).toEqual(['shop']);
  expect(t.status?.routers).toBe(1);
  expect(t.status?.hitRatio?.l1).toBeGreaterThan(0);
  expect(t.status?.hitRatioSummary).toMatch(/^\d+% \(L1 \d+%/);
  expect(t.metadata.finalizers).toContain('sibyl.dev/cache-cleanup');
  const table = await kubectlOk(['get', 'ct', 'shop-cache', '-n', ns]);
  expect(table).toMatch(/HIT RATIO/);
  expect(table).toContain(t.status?.hitRatioSummary as string);
  console.log(`kubectl get ct:\n${table}`);
});

it('the flush annotation deletes the L2 keys and empties the router; the same value never flushes twice', async () => {
  const req = { message: randomUUID(), responseSize: 32 };
  await echo(client, req);
  await waitFor(async () => (await l2Keys('shop')).length > 0, { what: 'L2 keys to flush' });
  const keys = (await l2Keys('shop')).length;
  const calls = await backendCalls();
  await echo(client, req);
  expect(await backendCalls()).toBe(calls); // cached

  await kubectlOk(['annotate', 'ct', 'shop-cache', '-n', ns, 'sibyl.dev/flush=first']);
  await waitFor(async () => (await getTier('shop-cache')).status?.flushedToken === 'first', {
    what: 'status.flushedToken',
  });
  const flushed = await waitFor(
    async () => (await listEvents(ns, 'shop-cache')).find((e) => e.reason === 'Flushed'),
    { what: 'a Flushed event' },
  );
  const deleted = Number(/deleted (\d+) L2 key/.exec(flushed.message ?? '')?.[1]);
  console.log(`Flushed event: ${flushed.message} (${keys} keys before)`);
  expect(deleted).toBeGreaterThanOrEqual(keys);
  expect(await l2Keys('shop')).toEqual([]);
  await waitFor(
    () =>
      router
        .poolCache(`${ns}/shop`)
        ?.tierCounters()
        .find((c) => c.tier === 'l1')?.entries === 0,
    {
      what: "the router's L1 to be emptied",
    },
  );
  await echo(client, req);
  expect(await backendCalls()).toBe(calls + 1); // the flush reached the router

  // The same value again (a reconcile for another reason): nothing is flushed.
  await waitFor(async () => (await l2Keys('shop')).length > 0, { what: 'the refill' });
  await kubectlOk([
    'annotate',
    'ct',
    'shop-cache',
    '-n',
    ns,
    '--overwrite',
    'sibyl.dev/flush=first',
    'touch=1',
  ]);
  await kubectlOk(['label', 'ct', 'shop-cache', '-n', ns, 'touched=yes']);
  // More than one refresh of the tier (its only one here) since: a reconcile that began after the edits
  // has run to its end.
  const reconciled = await reconciles(op, 'CacheTier');
  await waitFor(async () => (await reconciles(op, 'CacheTier')) >= reconciled + 2, {
    what: 'two more reconciles of the tier',
  });
  expect((await l2Keys('shop')).length).toBeGreaterThan(0);
  await echo(client, req);
  expect(await backendCalls()).toBe(calls + 1);
});

it("an operator restart leaves the routers' caches in place", async () => {
  const cache = router.poolCache(`${ns}/shop`);
  const req = { message: randomUUID(), responseSize: 32 };
  await echo(client, req);
  const calls = await backendCalls();
  const v0 = link.version;
  await op.stop();
  op = await startOp();
  await waitFor(() => link.connected && link.version > v0, {
    timeoutMs: 30_000,
    what: 'the router to reconnect',
  });
  await waitFor(async () => cond(await getTier('shop-cache'), 'Ready')?.status === 'True', { what: 'Ready' });
  expect(router.poolCache(`${ns}/shop`)).toBe(cache); // never replaced, so its L1 is intact
  await echo(client, req);
  expect(await backendCalls()).toBe(calls);
});

it('a secretRef naming a missing Secret makes the tier Invalid; the Secret appearing makes it work', async () => {
  await createTier('side-cache', {
    pools: ['side'],
    methods: [{ method: '/sibyl.demo.v1.Side/Get' }],
    l2: { redis: { secretRef: { name: 'side-redis', key: 'url' } } },
  });
  const bad = await waitFor(
    async () => {
      const t = await getTier('side-cache');
      return cond(t, 'Invalid')?.status === 'True' && t;
    },
    { what: 'Invalid=True' },
  );
  expect(cond(bad, 'Invalid')).toMatchObject({
    reason: 'SecretNotFound',
    message: `l2.redis.secretRef names Secret side-redis, which does not exist in ${ns}`,
  });
  expect(cond(bad, 'Ready')?.status).toBe('False');
  expect(router.poolCache(`${ns}/side`)).toBeUndefined();

  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'side-redis' }, stringData: { url: REDIS } },
  });
  await waitFor(
    async () => {
      const t = await getTier('side-cache');
      return cond(t, 'Invalid')?.status === 'False' && cond(t, 'RedisReachable')?.status === 'True';
    },
    { what: 'the Secret to be read and Redis pinged' },
  );
  // The router got the URL the operator read: its L2 is that Redis.
  const cache = await waitFor(() => router.poolCache(`${ns}/side`)?.l2, { what: "the side pool's L2" });
  await cache.ready();
});

it('deleting a CacheTier deletes its L2 keys, and the object goes away', async () => {
  await echo(client, { message: randomUUID(), responseSize: 16 });
  await waitFor(async () => (await l2Keys('shop')).length > 0, { what: 'L2 keys' });
  // An unrelated key under a neighbouring prefix survives.
  const neighbour = `sibyl:cache:${ns}/shopping:x`;
  await redis.set(neighbour, '1', 'EX', 60);
  await kubectlOk(['delete', 'ct', 'shop-cache', '-n', ns, '--wait=false']);
  await waitFor(async () => (await kubectl(['get', 'ct', 'shop-cache', '-n', ns])).code !== 0, {
    what: 'the CacheTier to go away',
  });
  expect(await l2Keys('shop')).toEqual([]);
  expect(await redis.get(neighbour)).toBe('1');
  const cleaned = (await listEvents(ns, 'shop-cache')).find((e) => e.reason === 'CacheCleaned');
  expect(cleaned?.message).toMatch(/deleted \d+ L2 keys? of shop/);
  await waitFor(() => router.poolCache(`${ns}/shop`) === undefined, { what: 'the router to drop the cache' });
});
