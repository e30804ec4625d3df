import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Counter } from 'prom-client';
import type { ControlClient } from '../../../src/control/client.js';
import type { Operator } from '../../../src/operator/operator.js';
import type { Router } from '../../../src/router/router.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { echo, echoCalls, serverStream, startBackends, type DemoClient } from '../../support/grpc.js';
import { createNamespace, kubeConfig } from '../../support/kube.js';
import { createPool, getPool } from '../../support/objects.js';
import { metricValue, startOperator, subscribedRouters } from '../../support/operator.js';
import { logDir } from '../../support/procs.js';
import { makeServingCert } from '../../support/tls.js';
import { routerAccountToken } from '../../support/token.js';
import { waitFor } from '../../support/wait.js';
import { startEnvoy, type EnvoyProcess } from '../../support/xds.js';

/**
 * A CacheTier with Envoy as the data plane, all parts real: an operator in this process (real
 * kube-apiserver) programs a real Envoy 1.40 over ADS; a sibyl router subscribed over the control
 * stream advertises its address; the demo backend counts the calls it serves. Envoy sends the tier's
 * cacheable method through the router (a miss reaches the backend, a hit does not), every other method
 * straight to the backend, and falls back to the backend by itself when the router is gone.
 */
const ECHO = '/sibyl.demo.v1.Demo/Echo';

let ns: string;
let op: Operator;
let backend: Backend;
let router: Router;
let link: ControlClient;
let envoy: EnvoyProcess;
let client: DemoClient;

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
const condition = async (type: string) =>
  ((await getPool(ns, 'demo')).status?.conditions as Cond[] | undefined)?.find((c) => c.type === type);

/** The router's cache lookups answered by L1 (sibyl_cache_requests_total{tier="l1",result="hit"}). */
const l1Hits = () =>
  metricValue(router.metrics.registry.getSingleMetric('sibyl_cache_requests_total') as Counter, {
    tier: 'l1',
    result: 'hit',
  });
/** Calls the router has proxied or answered, whatever their code. */
const routerCalls = () => metricValue(router.metrics.requests);
const streamCalls = () => metricValue(backend.metrics.requests, { method: 'ServerStream' });

beforeAll(async () => {
  const tls = makeServingCert();
  ns = await createNamespace('cache-envoy');
  const tokenFile = join(logDir, `${ns}-envoy.token`);
  writeFileSync(tokenFile, await routerAccountToken(ns, 'envoy'));
  [backend] = (await startBackends(1)) as [Backend];
  await createPool(ns, 'demo', {
    endpoints: [{ address: backend.address }],
    match: { services: ['sibyl.demo.v1.Demo'] },
    balancing: { policy: 'RoundRobin' },
  });
  await kubeConfig()
    .makeApiClient(k8s.CustomObjectsApi)
    .createNamespacedCustomObject({
      group: 'sibyl.dev',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'cachetiers',
      body: {
        apiVersion: 'sibyl.dev/v1alpha1',
        kind: 'CacheTier',
        metadata: { name: 'demo-cache' },
        spec: { pools: ['demo'], methods: [{ method: ECHO, ttl: '5m' }] },
      },
    });
  op = await startOperator(ns, {
    statusIntervalMs: 300,
    control: {
      addr: '127.0.0.1:0',
      tls: { cert: tls.cert, key: tls.key },
      allowedRouters: [`${ns}/router`, `${ns}/envoy`],
      pushIntervalMs: 200,
      reportIntervalMs: 300,
    },
  });
  const port = op.controlPort as number;
  const subscribed = await subscribedRouters(['r1'], {
    port,
    ca: tls.ca,
    token: await routerAccountToken(ns, 'router'),
    namespace: ns,
    advertise: true,
  });
  [router] = subscribed.routers as [Router];
  [link] = subscribed.links as [ControlClient];
  ({ envoy, client } = await startEnvoy('envoy-cache', 331, {
    server: `localhost:${port}`,
    caFile: join(tls.dir, 'ca.crt'),
    tokenFile,
    nodeId: 'envoy-cache',
  }));
});

afterAll(async () => {
  client?.close();
  await envoy?.kill();
  link?.stop();
  await router?.close();
  await op?.stop();
  await backend?.stop(0);
});

it('a cacheable call through Envoy misses once (the backend serves it) and then hits in the router (the backend does not)', async () => {
  const c = await waitFor(
    async () => {
      const x = await condition('CacheDataPath');
      const synced = (await condition('DataPlaneSynced'))?.status === 'True';
      return x?.status === 'True' && synced && x;
    },
    { timeoutMs: 30_000, what: 'CacheDataPath True with Envoy in sync' },
  );
  expect(c.reason).toBe('ThroughRouters');
  expect(c.message).toMatch(/sends the 1 cacheable method through 1 sibyl router/);
  const req = { message: randomUUID(), responseSize: 32 };
  const [calls0, hits0, routed0] = [await echoCalls([backend]), await l1Hits(), await routerCalls()];
  const miss = await echo(client, req, { deadlineMs: 5000 });
  expect(miss.error).toBeUndefined();
  expect(await echoCalls([backend])).toBe(calls0 + 1);
  expect(await routerCalls()).toBe(routed0 + 1);
  const hit = await echo(client, req, { deadlineMs: 5000 });
  expect(hit.error).toBeUndefined();
  expect(hit.response?.message).toBe(miss.response?.message);
  expect(await echoCalls([backend])).toBe(calls0 + 1);
  expect(await l1Hits()).toBe(hits0 + 1);
  expect(await routerCalls()).toBe(routed0 + 2);
});

it('a method the tier does not cache goes from Envoy straight to the backend, not through the router', async () => {
  const [streams0, routed0] = [await streamCalls(), await routerCalls()];
  for (let i = 0; i < 3; i++) {
    const r = await serverStream(client, { count: 2 }, { deadlineMs: 5000 }).done;
    expect(r.error).toBeUndefined();
    expect(r.response).toHaveLength(2);
  }
  expect(await streamCalls()).toBe(streams0 + 3);
  expect(await routerCalls()).toBe(routed0);
});

it("with the router's port closed, Envoy falls back to the backend by itself; with the router gone, the condition says so", async () => {
  // The router stops serving calls but stays subscribed: the operator still lists it, so only Envoy's
  // own failover (outlier ejection of the router, then the aggregate cluster's next cluster) can help.
  await router.close();
  const before = await echoCalls([backend]);
  for (let i = 0; i < 5; i++) {
    const r = await echo(client, { message: randomUUID() }, { deadlineMs: 5000 });
    expect(r.error).toBeUndefined();
  }
  expect(await echoCalls([backend])).toBe(before + 5);
  expect(await envoy.adminGet('/stats?filter=outlier_detection.ejections_enforced_total')).toMatch(
    /routers\.outlier_detection\.ejections_enforced_total: [1-9]/,
  );
  // The router leaves the control stream: Envoy's route has no router left, and status says so.
  link.stop();
  const c = await waitFor(
    async () => {
      const x = await condition('CacheDataPath');
      return x?.status === 'False' && x;
    },
    { timeoutMs: 30_000, what: 'CacheDataPath False once the router left' },
  );
  expect(c.reason).toBe('NoRouters');
  await waitFor(async () => (await condition('DataPlaneSynced'))?.status === 'True', {
    what: 'Envoy to ACK the routes without the router',
  });
  const after = await echoCalls([backend]);
  for (let i = 0; i < 3; i++)
    expect((await echo(client, { message: 'same' }, { deadlineMs: 5000 })).error).toBeUndefined();
  expect(await echoCalls([backend])).toBe(after + 3); // uncached: every call reaches the backend
});
