import { kubectlOk } from '../../support/kube.js';
import { Load } from '../../support/load.js';
import { listEvents } from '../../support/objects.js';
import { waitFor } from '../../support/wait.js';
import { shareOf, traceEnvoy, zeroWeightsWhile, type TracedCall } from '../../support/xds.js';
import { OperatedFleet, atLeast } from '../../support/xds-fleet.js';

/**
 * The operator programs real data planes: a BackendPool reconciled by an operator in this process
 * (real kube-apiserver) reaches a real Envoy 1.40 and the grpc-go proxyless client over ADS on the
 * control API's port (TLS, ServiceAccount tokens), beside two sibyl routers whose load reports are
 * the fleet's telemetry: service times for the weights, failures for the fleet breakers.
 */

let f: OperatedFleet;
let load: Load | undefined;
/** When set, every endpoint weight in EDS becomes 0, which grpc-go and Envoy refuse. */
let zeroWeights = false;

const addr = (i: number) => f.address(i);

beforeAll(async () => {
  f = await OperatedFleet.start({
    prefix: 'xds-op',
    backends: 4, // b3 joins later
    inPool: 3,
    spec: {
      match: { services: ['sibyl.demo.v1.Demo'] },
      balancing: { policy: 'RoundRobin' },
      retries: { maxAttempts: 1 },
      // Envoy's outlier detection takes the same threshold: high, so that only the fleet breaker acts.
      circuitBreaker: { failureThreshold: 100, recoveryTimeout: '15s' },
      telemetry: { interval: '1s' },
    },
    mutate: zeroWeightsWhile(() => zeroWeights),
    envoyBaseId: 311,
  });
  // b0 is five times as fast as b1, b2 and b3.
  f.backends[0]?.state.update({ latencyMs: 2 });
  for (const b of f.backends.slice(1)) b.state.update({ latencyMs: 10 });
});

afterAll(async () => {
  load?.close();
  await f?.stop();
});

it('DRAINING reaches Envoy and grpc-go within a second of the fleet breaker opening on a failing backend', async () => {
  // Light traffic from both clients, spread over the three backends (no telemetry yet: equal weights).
  const envoyCalls = traceEnvoy(f.envoyClient, 10);
  f.go.trace(20);
  await waitFor(
    () => envoyCalls.calls.some((c) => c.backend === 'b1') && f.go.traced.some((c) => c.backend === 'b1'),
    { what: 'calls to b1 from Envoy and grpc-go' },
  );
  let opened = 0;
  let drainingSent: Array<[string, string]> | undefined;
  const off = f.op.control?.routing.onChange(() => {
    if (opened || !f.op.control?.routing.get(f.key)?.endpoints.find((e) => e.address === addr(1))?.forceOpen)
      return;
    opened = Date.now();
    // The same reconcile publishes to the ADS server right after the routers' state: the EDS each
    // client is sent then is the one with b1 DRAINING.
    setImmediate(() => (drainingSent = f.clientVersions('sent')));
  });
  // b1 fails every call; the routers' reports show it failing on both, and the operator opens it.
  f.backends[1]?.state.update({ errorRate: 1 });
  const failing = Date.now();
  load = new Load({ targets: f.routers.map((r) => r.address), rps: 150, deadlineMs: 5000 }).start();
  await waitFor(() => opened, { timeoutMs: 30_000, what: 'the fleet breaker to open on b1' });
  const ackedAt = await waitFor(
    () => {
      const acked = new Map(f.clientVersions('acked'));
      return drainingSent?.every(([node, v]) => atLeast(acked.get(node), v)) && Date.now();
    },
    { intervalMs: 5, what: 'both clients to ACK the EDS with b1 DRAINING' },
  );
  await waitFor(
    () => envoyCalls.calls.some((c) => c.at > opened + 6000) && f.go.traced.some((c) => c.at > opened + 6000),
    {
      what: 'six seconds of calls after the breaker opened',
    },
  );
  off?.();
  await envoyCalls.stop();
  await f.go.stopTrace();
  f.backends[1]?.state.update({ errorRate: 0 });
  // Lighter fleet traffic from here on: telemetry for the weights, well below the pool's capacity.
  await load.stop();
  load.close();
  load = new Load({ targets: f.routers.map((r) => r.address), rps: 40, deadlineMs: 5000 }).start();
  const last = (calls: readonly TracedCall[]) =>
    Math.max(opened, ...calls.filter((c) => c.at > opened && c.backend === 'b1').map((c) => c.at)) - opened;
  const before = (calls: readonly TracedCall[]) =>
    calls.filter((c) => c.at > failing && c.at <= opened && c.backend === 'b1').length;
  console.log(
    `fleet breaker opened ${opened - failing} ms after b1 began failing; Envoy and grpc-go ACKed DRAINING ${ackedAt - opened} ms after it opened; last call on b1 after it: Envoy +${last(envoyCalls.calls)} ms (${before(envoyCalls.calls)} calls on b1 while it failed), grpc-go +${last(f.go.traced)} ms (${before(f.go.traced)} calls)`,
  );
  // Envoy's own outlier detection (100 consecutive failures) did not eject b1: DRAINING did.
  expect(await f.envoy.adminGet('/stats?filter=outlier_detection.ejections_enforced_total')).not.toMatch(
    /: [1-9]/,
  );
  for (const calls of [envoyCalls.calls, f.go.traced]) {
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
      const w = f.weights();
      const b0 = (w[addr(0)] ?? 0) >= 2.5 * Math.max(w[addr(1)] ?? Infinity, w[addr(2)] ?? Infinity);
      const closed = f.op.control?.routing.get(f.key)?.endpoints.every((e) => !e.forceOpen);
      return (
        b0 &&
        closed &&
        f.xdsPool()?.stockPolicy === 'ring_hash' &&
        f.xdsPool()?.clients.every((c) => c.current)
      );
    },
    {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: `b0's weight to be the largest, ring_hash, both clients on it: ${JSON.stringify(f.weights())} ${f.xdsPool()?.stockPolicy}`,
    },
  );
  const w = f.weights();
  const expected = (w[addr(0)] as number) / Object.values(w).reduce((a, b) => a + b, 0);
  const viaEnvoy = traceEnvoy(f.envoyClient, 0, 400);
  await viaEnvoy.done;
  const viaGo = await f.go.batch(400, { concurrency: 4 });
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
  const now = f.weights();
  console.log(
    `weights pushed b0:b1:b2 ${[0, 1, 2].map((i) => w[addr(i)]).join(':')}, b0's share ${expected.toFixed(3)} (after the calls ${[0, 1, 2].map((i) => now[addr(i)]).join(':')}, ${f.xdsPool()?.stockPolicy}); shares of 400 calls: Envoy ${JSON.stringify(round(shares.envoy))}, grpc-go ${JSON.stringify(round(shares['grpc-go']))}`,
  );
  for (const s of Object.values(shares)) {
    expect(s.b0).toBeGreaterThan(s.b1 ?? 0);
    expect(s.b0).toBeGreaterThan(s.b2 ?? 0);
    expect(Math.abs((s.b0 ?? 0) - expected)).toBeLessThan(0.2);
  }
  // Status shows the weight pushed for each endpoint.
  await waitFor(
    async () => (await f.status())?.endpoints?.every((e) => e.xdsWeight === f.weights()[e.address]),
    {
      what: 'status to show the weights pushed',
    },
  );
});

it('kubectl describe bp shows the xDS clients by kind, their ACKed versions and the weights pushed', async () => {
  // Every push is a moment with a client not yet synced: wait for a status with both in sync.
  const s = await waitFor(
    async () => {
      const x = await f.status();
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
  const out = await kubectlOk(['describe', 'bp', 'demo', '-n', f.ns]);
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
  await f.setEndpoints(4); // b3 joins, in an EDS both clients refuse (endpoint weight 0)
  const c = await waitFor(
    async () => {
      const x = await f.condition();
      return x?.status === 'False' && x;
    },
    { what: 'DataPlaneSynced False' },
  );
  expect(c.reason).toBe('XdsRejected');
  console.log(`condition: ${c.message}`);
  const events = await waitFor(
    async () => {
      const e = (await listEvents(f.ns, 'demo')).filter((x) => x.reason === 'XdsRejected');
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
  expect(await f.op.metrics.registry.getSingleMetricAsString('sibyl_xds_rejected_total')).toMatch(
    new RegExp(`pool="${f.key}",kind="grpc-go",type="EDS"} [1-9]`),
  );
  // Their last good configuration: b0, b1 and b2, never the b3 of the refused update.
  const viaGo = await f.go.batch(60);
  const viaEnvoy = traceEnvoy(f.envoyClient, 0, 60);
  await viaEnvoy.done;
  expect(viaGo.errors).toEqual({});
  expect(Object.keys(viaGo.backends)).not.toContain('b3');
  expect(viaEnvoy.calls.map((x) => x.backend)).not.toContain('b3');
  expect(viaEnvoy.calls.every((x) => x.code === 0)).toBe(true);
  // The operator's next reconcile (every second) encodes the pool without the fault; both ACK it.
  zeroWeights = false;
  await waitFor(async () => (await f.condition())?.status === 'True', { what: 'DataPlaneSynced True again' });
  await waitFor(async () => (await f.go.batch(40)).backends.b3, { what: 'grpc-go to route to b3' });
});

it("Envoy's health listener serves /ready and /stats/prometheus, and nothing else of the admin API", async () => {
  const get = async (path: string, method = 'GET') => {
    const r = await fetch(`http://${f.health}${path}`, { method });
    return { code: r.status, body: await r.text() };
  };
  expect(await get('/ready')).toEqual({ code: 200, body: 'LIVE\n' });
  const stats = await get('/stats/prometheus');
  expect(stats.code).toBe(200);
  // The pool's cluster by a name Prometheus tags whole (its resource name has dots).
  const name = `sibyl_${f.key.replace(/[./]/g, '_')}`;
  expect(stats.body).toMatch(
    new RegExp(`^envoy_cluster_upstream_rq_total\\{envoy_cluster_name="${name}"\\} [1-9]`, 'm'),
  );
  expect((await get('/quitquitquit', 'POST')).code).toBe(404);
  expect((await get('/config_dump')).code).toBe(404);
});

it('an Envoy restart resyncs from the operator', async () => {
  await f.restartEnvoy();
  const r = traceEnvoy(f.envoyClient, 0, 120);
  await r.done;
  expect(r.calls.every((c) => c.code === 0)).toBe(true);
  expect(new Set(r.calls.map((c) => c.backend))).toEqual(new Set(['b0', 'b1', 'b2', 'b3']));
});

it('with the operator stopped, Envoy and grpc-go keep routing on their last configuration', async () => {
  await load?.stop();
  await f.op.stop();
  const viaGo = await f.go.batch(120);
  const viaEnvoy = traceEnvoy(f.envoyClient, 0, 120);
  await viaEnvoy.done;
  expect(viaGo.errors).toEqual({});
  expect(Object.keys(viaGo.backends).sort()).toEqual(['b0', 'b1', 'b2', 'b3']);
  expect(viaEnvoy.calls.every((c) => c.code === 0)).toBe(true);
  expect(new Set(viaEnvoy.calls.map((c) => c.backend))).toEqual(new Set(['b0', 'b1', 'b2', 'b3']));
});
