import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { ControlClient } from '../../../src/control/client.js';
import type { Router } from '../../../src/router/router.js';
import type { Operator } from '../../../src/operator/operator.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { renderBootstrap } from '../../../src/xds/bootstrap.js';
import { demoClient, startBackends, type DemoClient } from '../../support/grpc.js';
import { createNamespace, kubeConfig, kubectlOk } from '../../support/kube.js';
import { Load } from '../../support/load.js';
import { createPool, getPool, listEvents } from '../../support/objects.js';
import { startOperator, subscribedRouters } from '../../support/operator.js';
import { logDir } from '../../support/procs.js';
import { makeServingCert } from '../../support/tls.js';
import { routerAccountToken } from '../../support/token.js';
import { freePort, waitFor } from '../../support/wait.js';
import {
  EnvoyProcess,
  GoXdsClient,
  shareOf,
  traceEnvoy,
  zeroWeightsWhile,
  type TracedCall,
} from '../../support/xds.js';

/**
 * The operator programs real data planes: a BackendPool reconciled by an operator in this process
 * (real kube-apiserver) reaches a real Envoy 1.40 and the grpc-go proxyless client over ADS on the
 * control API's port (TLS, ServiceAccount tokens), beside two sibyl routers whose load reports are
 * the fleet's telemetry: service times for the weights, failures for the fleet breakers.
 */

const tls = makeServingCert();
const caFile = join(tls.dir, 'ca.crt');
let ns: string;
let key: string;
let op: Operator;
let backends: Backend[];
let envoy: EnvoyProcess;
let envoyClient: DemoClient;
/** Envoy's health listener (the chart's probes and Prometheus use it). */
let health: string;
let go: GoXdsClient;
let load: Load | undefined;
const routers: Router[] = [];
const links: ControlClient[] = [];
/** When set, every endpoint weight in EDS becomes 0, which grpc-go and Envoy refuse. */
let zeroWeights = false;

const zero = zeroWeightsWhile(() => zeroWeights);

const addr = (i: number) => (backends[i] as Backend).address;
const xdsPool = () => op.control?.xds.pool(key);
const weights = () => Object.fromEntries(xdsPool()?.weights ?? []);

interface Status {
  endpoints?: Array<{ address: string; xdsWeight?: number }>;
  dataPlanes?: {
    connected: number;
    byKind: Record<string, number>;
    clients?: Array<{ node: string; kind: string; synced: boolean; acked?: Record<string, string> }>;
  };
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}
/** Each xDS client's EDS version sent or ACKed, by node id. */
const clientVersions = (which: 'sent' | 'acked'): Array<[string, string]> =>
  (op.control?.xds.clients() ?? []).map((c) => [c.node, c.types.EDS?.[which] ?? '']);
/** Whether version `a` ("N" or "N.M", as the ADS server numbers them) is `b` or later. */
function atLeast(a: string | undefined, b: string): boolean {
  if (!a) return false;
  const [x, y] = [a, b].map((v) => v.split('.').map(Number)) as [number[], number[]];
  return (x[0] ?? 0) !== (y[0] ?? 0) ? (x[0] ?? 0) > (y[0] ?? 0) : (x[1] ?? 0) >= (y[1] ?? 0);
}
const status = async () => (await getPool(ns, 'demo')).status as Status | undefined;
const condition = async () => (await status())?.conditions?.find((c) => c.type === 'DataPlaneSynced');

function tokenFile(token: string): string {
  const f = join(logDir, `${ns}-xds.token`);
  writeFileSync(f, token);
  return f;
}

async function patchEndpoints(n: number): Promise<void> {
  const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await api.patchNamespacedCustomObject(
    {
      group: 'sibyl.dev',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'backendpools',
      name: 'demo',
      body: [
        {
          op: 'replace',
          path: '/spec/endpoints',
          value: backends.slice(0, n).map((b) => ({ address: b.address })),
        },
      ],
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
  );
}

beforeAll(async () => {
  ns = await createNamespace('xds-op');
  key = `${ns}/demo`;
  const routerToken = await routerAccountToken(ns, 'router');
  const xdsToken = tokenFile(await routerAccountToken(ns, 'envoy'));
  // b0 is five times as fast as b1 and b2; b3 joins later.
  backends = await startBackends(4);
  backends[0]?.state.update({ latencyMs: 2 });
  for (const b of backends.slice(1)) b.state.update({ latencyMs: 10 });
  await createPool(ns, 'demo', {
    endpoints: backends.slice(0, 3).map((b) => ({ address: b.address })),
    match: { services: ['sibyl.demo.v1.Demo'] },
    balancing: { policy: 'RoundRobin' },
    retries: { maxAttempts: 1 },
    // Envoy's outlier detection takes the same threshold: high, so that only the fleet breaker acts.
    circuitBreaker: { failureThreshold: 100, recoveryTimeout: '15s' },
    telemetry: { interval: '1s' },
  });
  op = await startOperator(ns, {
    statusIntervalMs: 300,
    control: {
      addr: '127.0.0.1:0',
      tls: { cert: tls.cert, key: tls.key },
      allowedRouters: [`${ns}/router`, `${ns}/envoy`],
      pushIntervalMs: 300,
      reportIntervalMs: 300,
      xdsMutate: zero,
    },
  });
  const linked = await subscribedRouters(['r1', 'r2'], {
    port: op.controlPort as number,
    ca: tls.ca,
    token: routerToken,
    namespace: ns,
  });
  routers.push(...linked.routers);
  links.push(...linked.links);
  const server = `localhost:${op.controlPort}`;
  health = `127.0.0.1:${await freePort()}`;
  envoy = await EnvoyProcess.create('envoy-op', 311, {
    server,
    caFile,
    tokenFile: xdsToken,
    nodeId: 'envoy-op',
    health,
  });
  envoy.start();
  go = new GoXdsClient(
    'go-op',
    `xds:///demo.${ns}`,
    renderBootstrap('grpc', { server, caFile, tokenFile: xdsToken, nodeId: 'go-op' }),
    { GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS: 'true' },
  );
  await envoy.ready();
  envoyClient = demoClient(envoy.listen);
  await waitFor(() => links.every((l) => l.version > 0), { what: 'routers to apply a table' });
  await waitFor(async () => Object.keys((await go.batch(30)).backends).length === 3, {
    what: 'grpc-go to route to b0, b1 and b2',
  });
});

afterAll(async () => {
  load?.close();
  envoyClient?.close();
  await go?.close();
  await envoy?.kill();
  for (const l of links) l.stop();
  for (const r of routers) await r.close();
  await op?.stop();
  for (const b of backends ?? []) await b.stop(0);
});

it('DRAINING reaches Envoy and grpc-go within a second of the fleet breaker opening on a failing backend', async () => {
  // Light traffic from both clients, spread over the three backends (no telemetry yet: equal weights).
  const envoyCalls = traceEnvoy(envoyClient, 10);
  go.trace(20);
  await waitFor(
    () => envoyCalls.calls.some((c) => c.backend === 'b1') && go.traced.some((c) => c.backend === 'b1'),
    { what: 'calls to b1 from Envoy and grpc-go' },
  );
  let opened = 0;
  let drainingSent: Array<[string, string]> | undefined;
  const off = op.control?.routing.onChange(() => {
    if (opened || !op.control?.routing.get(key)?.endpoints.find((e) => e.address === addr(1))?.forceOpen)
      return;
    opened = Date.now();
    // The same reconcile publishes to the ADS server right after the routers' state: the EDS each
    // client is sent then is the one with b1 DRAINING.
    setImmediate(() => (drainingSent = clientVersions('sent')));
  });
  // b1 fails every call; the routers' reports show it failing on both, and the operator opens it.
  backends[1]?.state.update({ errorRate: 1 });
  const failing = Date.now();
  load = new Load({ targets: routers.map((r) => r.address), rps: 150, deadlineMs: 5000 }).start();
  await waitFor(() => opened, { timeoutMs: 30_000, what: 'the fleet breaker to open on b1' });
  const ackedAt = await waitFor(
    () => {
      const acked = new Map(clientVersions('acked'));
      return drainingSent?.every(([node, v]) => atLeast(acked.get(node), v)) && Date.now();
    },
    { intervalMs: 5, what: 'both clients to ACK the EDS with b1 DRAINING' },
  );
  await waitFor(
    () => envoyCalls.calls.some((c) => c.at > opened + 6000) && go.traced.some((c) => c.at > opened + 6000),
    {
      what: 'six seconds of calls after the breaker opened',
    },
  );
  off?.();
  await envoyCalls.stop();
  await go.stopTrace();
  backends[1]?.state.update({ errorRate: 0 });
  // Lighter fleet traffic from here on: telemetry for the weights, well below the pool's capacity.
  await load.stop();
  load.close();
  load = new Load({ targets: routers.map((r) => r.address), rps: 40, deadlineMs: 5000 }).start();
  const last = (calls: readonly TracedCall[]) =>
    Math.max(opened, ...calls.filter((c) => c.at > opened && c.backend === 'b1').map((c) => c.at)) - opened;
  const before = (calls: readonly TracedCall[]) =>
    calls.filter((c) => c.at > failing && c.at <= opened && c.backend === 'b1').length;
  console.log(
    `fleet breaker opened ${opened - failing} ms after b1 began failing; Envoy and grpc-go ACKed DRAINING ${ackedAt - opened} ms after it opened; last call on b1 after it: Envoy +${last(envoyCalls.calls)} ms (${before(envoyCalls.calls)} calls on b1 while it failed), grpc-go +${last(go.traced)} ms (${before(go.traced)} calls)`,
  );
  // Envoy's own outlier detection (100 consecutive failures) did not eject b1: DRAINING did.
  expect(await envoy.adminGet('/stats?filter=outlier_detection.ejections_enforced_total')).not.toMatch(
    /: [1-9]/,
  );
  for (const calls of [envoyCalls.calls, go.traced]) {
    expect(before(calls)).toBeGreaterThan(0);
    expect(last(calls)).toBeLessThan(5000);
    expect(
      calls
        .filter((c) => c.at > opened + 5000)
        .map((c) => c.backend)
        .sort(),
    ).toContain('b0');
  }
});

it('traffic follows the weights the operator computed from service times', async () => {
  // The breaker closes after 15 s and forgets b1's failures; the routers' reports give every endpoint a
  // service time again. Well below the capacity the weights estimate, proxyless clients get ring_hash,
  // which picks by weight.
  await waitFor(
    () => {
      const w = weights();
      const b0 = (w[addr(0)] ?? 0) >= 2.5 * Math.max(w[addr(1)] ?? Infinity, w[addr(2)] ?? Infinity);
      const closed = op.control?.routing.get(key)?.endpoints.every((e) => !e.forceOpen);
      return (
        b0 && closed && xdsPool()?.stockPolicy === 'ring_hash' && xdsPool()?.clients.every((c) => c.current)
      );
    },
    {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: `b0's weight to be the largest, ring_hash, both clients on it: ${JSON.stringify(weights())} ${xdsPool()?.stockPolicy}`,
    },
  );
  const w = weights();
  const expected = (w[addr(0)] as number) / Object.values(w).reduce((a, b) => a + b, 0);
  const viaEnvoy = traceEnvoy(envoyClient, 0, 400);
  await viaEnvoy.done;
  const viaGo = await go.batch(400, { concurrency: 4 });
  const shares = {
    envoy: shareOf(viaEnvoy.calls.map((c) => c.backend)),
    'grpc-go': shareOf(Object.entries(viaGo.backends).flatMap(([b, n]) => Array<string>(n).fill(b))),
  };
  const round = (x: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(x)
        .sort()
        .map(([k, v]) => [k, Number(v.toFixed(3))]),
    );
  const now = weights();
  console.log(
    `weights pushed b0:b1:b2 ${[0, 1, 2].map((i) => w[addr(i)]).join(':')}, b0's share ${expected.toFixed(3)} (after the calls ${[0, 1, 2].map((i) => now[addr(i)]).join(':')}, ${xdsPool()?.stockPolicy}); shares of 400 calls: Envoy ${JSON.stringify(round(shares.envoy))}, grpc-go ${JSON.stringify(round(shares['grpc-go']))}`,
  );
  for (const s of Object.values(shares)) {
    expect(s.b0).toBeGreaterThan(s.b1 ?? 0);
    expect(s.b0).toBeGreaterThan(s.b2 ?? 0);
    expect(Math.abs((s.b0 ?? 0) - expected)).toBeLessThan(0.2);
  }
  // Status shows the weight pushed for each endpoint.
  await waitFor(async () => (await status())?.endpoints?.every((e) => e.xdsWeight === weights()[e.address]), {
    what: 'status to show the weights pushed',
  });
});

it('kubectl describe bp shows the xDS clients by kind, their ACKed versions and the weights pushed', async () => {
  // Every push is a moment with a client not yet synced: wait for a status with both in sync.
  const s = await waitFor(
    async () => {
      const x = await status();
      const synced = x?.conditions?.find((c) => c.type === 'DataPlaneSynced')?.status === 'True';
      return synced && x?.dataPlanes?.clients?.every((c) => c.synced) && x;
    },
    { timeoutMs: 30_000, what: 'a status with DataPlaneSynced True and both clients synced' },
  );
  expect(s.dataPlanes?.byKind).toEqual({ envoy: 1, 'grpc-go': 1 });
  expect(s.dataPlanes?.clients?.map((c) => [c.node, c.kind]).sort()).toEqual([
    ['envoy-op', 'envoy'],
    ['go-op', 'grpc-go'],
  ]);
  expect(s.dataPlanes?.clients?.every((c) => c.acked?.EDS && c.acked.CDS && c.acked.LDS)).toBe(true);
  const out = await kubectlOk(['describe', 'bp', 'demo', '-n', ns]);
  console.log(out.slice(out.indexOf('Data Planes:'), out.indexOf('Decision:')));
  expect(out).toMatch(/Data Planes:\s+By Kind:\s+Envoy:\s+1\s+Grpc - Go:\s+1/);
  expect(out).toMatch(/Kind:\s+envoy\s+Node:\s+envoy-op\s+Synced:\s+(true|false)/);
  expect(out).toMatch(/Connected:\s+2/);
  expect(out).toMatch(/Node:\s+go-op/);
  expect(out).toMatch(/EDS:\s+\d+/);
  expect(out).toMatch(/Xds Weight:\s+\d+/);
  expect(out).toMatch(/Reason:\s+Synced\s+Status:\s+True\s+Type:\s+DataPlaneSynced/);
});

it('a resource the clients refuse raises XdsRejected and the condition, they keep their last good configuration, and it clears', async () => {
  zeroWeights = true;
  await patchEndpoints(4); // b3 joins, in an EDS both clients refuse (endpoint weight 0)
  const c = await waitFor(
    async () => {
      const x = await condition();
      return x?.status === 'False' && x;
    },
    { what: 'DataPlaneSynced False' },
  );
  expect(c.reason).toBe('XdsRejected');
  console.log(`condition: ${c.message}`);
  const events = await waitFor(
    async () => {
      const e = (await listEvents(ns, 'demo')).filter((x) => x.reason === 'XdsRejected');
      return e.length >= 2 && e;
    },
    { what: 'an XdsRejected event from each client' },
  );
  expect(events.every((e) => e.type === 'Warning')).toBe(true);
  expect(events.map((e) => e.message).join('\n')).toMatch(
    /grpc-go client go-op refused EDS version \S+: .*weight/i,
  );
  expect(events.map((e) => e.message).join('\n')).toMatch(
    /envoy client envoy-op refused EDS version \S+: .*weight/i,
  );
  expect(await op.metrics.registry.getSingleMetricAsString('sibyl_xds_rejected_total')).toMatch(
    new RegExp(`pool="${key}",kind="grpc-go",type="EDS"} [1-9]`),
  );
  // Their last good configuration: b0, b1 and b2, never the b3 of the refused update.
  const viaGo = await go.batch(60);
  const viaEnvoy = traceEnvoy(envoyClient, 0, 60);
  await viaEnvoy.done;
  expect(viaGo.errors).toEqual({});
  expect(Object.keys(viaGo.backends)).not.toContain('b3');
  expect(viaEnvoy.calls.map((x) => x.backend)).not.toContain('b3');
  expect(viaEnvoy.calls.every((x) => x.code === 0)).toBe(true);
  // The operator's next reconcile (every second) encodes the pool without the fault; both ACK it.
  zeroWeights = false;
  await waitFor(async () => (await condition())?.status === 'True', { what: 'DataPlaneSynced True again' });
  await waitFor(async () => (await go.batch(40)).backends.b3, { what: 'grpc-go to route to b3' });
});

it("Envoy's health listener serves /ready and /stats/prometheus, and nothing else of the admin API", async () => {
  const get = async (path: string, method = 'GET') => {
    const r = await fetch(`http://${health}${path}`, { method });
    return { code: r.status, body: await r.text() };
  };
  expect(await get('/ready')).toEqual({ code: 200, body: 'LIVE\n' });
  const stats = await get('/stats/prometheus');
  expect(stats.code).toBe(200);
  // The pool's cluster by a name Prometheus tags whole (its resource name has dots).
  const name = `sibyl_${key.replace(/[./]/g, '_')}`;
  expect(stats.body).toMatch(
    new RegExp(`^envoy_cluster_upstream_rq_total\\{envoy_cluster_name="${name}"\\} [1-9]`, 'm'),
  );
  expect((await get('/quitquitquit', 'POST')).code).toBe(404);
  expect((await get('/config_dump')).code).toBe(404);
});

it('an Envoy restart resyncs from the operator', async () => {
  await envoy.kill();
  await waitFor(() => !op.control?.xds.clients().some((c) => c.node === 'envoy-op'), {
    what: 'the stream of the killed Envoy to end',
  });
  envoy.start();
  await envoy.ready();
  envoyClient.close();
  envoyClient = demoClient(envoy.listen);
  const r = traceEnvoy(envoyClient, 0, 120);
  await r.done;
  expect(r.calls.every((c) => c.code === 0)).toBe(true);
  expect(new Set(r.calls.map((c) => c.backend))).toEqual(new Set(['b0', 'b1', 'b2', 'b3']));
});

it('with the operator stopped, Envoy and grpc-go keep routing on their last configuration', async () => {
  await load?.stop();
  await op.stop();
  const viaGo = await go.batch(120);
  const viaEnvoy = traceEnvoy(envoyClient, 0, 120);
  await viaEnvoy.done;
  expect(viaGo.errors).toEqual({});
  expect(Object.keys(viaGo.backends).sort()).toEqual(['b0', 'b1', 'b2', 'b3']);
  expect(viaEnvoy.calls.every((c) => c.code === 0)).toBe(true);
  expect(new Set(viaEnvoy.calls.map((c) => c.backend))).toEqual(new Set(['b0', 'b1', 'b2', 'b3']));
});
