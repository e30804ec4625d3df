import type { Operator } from '../../../src/operator/operator.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { quiet, startBackendsOnOwnHosts } from '../../support/grpc.js';
import { createNamespace } from '../../support/kube.js';
import { Load } from '../../support/load.js';
import { createPool, getPool, listEvents } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { waitFor } from '../../support/wait.js';

/**
 * Server-side telemetry alone: a pool of three real `sibyl backend`s (b0 fast, b1 slow, b2 failing
 * every call) with static endpoints, no sibyl router and no Envoy. Calls come from a plain grpc-js
 * client that knows the three addresses (as a stock proxyless client would, reporting nothing). The
 * operator learns from the backends' own Prometheus series only: each static endpoint is scraped at
 * its own host on the pool's Prometheus port, so the backends listen on 127.0.0.2, .3 and .4. Their
 * CPU comes by out-of-band ORCA (they export no process metrics here).
 */

interface EndpointStatusView {
  address: string;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  predictedLatencyMs?: number;
  weight?: number;
  breaker?: string;
  inflight?: number;
  cpu?: number;
}

let ns: string;
let op: Operator;
let backends: Backend[] = [];
let load: Load | undefined;

beforeAll(async () => {
  ns = await createNamespace('server-side');
  const own = await startBackendsOnOwnHosts({ orca: true, log: quiet() });
  backends = own.backends;
  const metricsPort = own.metricsPort;
  backends[1]!.state.update({ latencyMs: 40 });
  backends[2]!.state.update({ errorRate: 1 });
  op = await startOperator(ns, {
    statusIntervalMs: 300,
    control: { addr: '127.0.0.1:0', insecure: true, allowedRouters: [] },
  });
  await createPool(ns, 'shop', {
    endpoints: backends.map((b) => ({ address: b.address, name: b.name })),
    match: { services: ['sibyl.demo.v1.Demo'] },
    circuitBreaker: { failureThreshold: 5, recoveryTimeout: '10m' },
    telemetry: { interval: '1s', metricsApi: false, orcaInterval: '1s', prometheus: { port: metricsPort } },
  });
  // 60 calls/s spread evenly over the three addresses, as round_robin would
  load = new Load({ targets: backends.map((b) => b.address), rps: 60, deadlineMs: 5000 }).start();
});

afterAll(async () => {
  await load?.stop();
  load?.close();
  await op?.stop();
  await Promise.all(backends.map((b) => b.stop(0)));
});

async function endpoints(): Promise<Map<string, EndpointStatusView>> {
  const p = await getPool(ns, 'shop');
  const eps = (p.status as { endpoints?: EndpointStatusView[] } | undefined)?.endpoints ?? [];
  return new Map(eps.map((e) => [e.address, e]));
}

it("gives the fleet view each endpoint's latency from the backends' own histograms", async () => {
  const [fast, slow] = [backends[0]!.address, backends[1]!.address];
  const eps = await waitFor(
    async () => {
      const e = await endpoints();
      return e.get(fast)?.latencyP50Ms !== undefined && e.get(slow)?.latencyP50Ms !== undefined && e;
    },
    { what: 'p50s in status from the scrapes', timeoutMs: 30_000 },
  );
  console.log(`status from server-side telemetry: ${JSON.stringify([...eps.values()])}`);
  expect(eps.get(slow)?.latencyP50Ms).toBeGreaterThanOrEqual(30); // 40 ms of service time
  expect(eps.get(fast)?.latencyP50Ms).toBeLessThan(10);
  expect((await getPool(ns, 'shop')).status).toMatchObject({ routers: 0 });
  // CPU utilisation from each backend's OpenRcaService stream
  const cpus = await waitFor(
    async () => {
      const e = [...(await endpoints()).values()].map((x) => x.cpu);
      return e.every((c) => c !== undefined) && (e as number[]);
    },
    { what: 'ORCA CPU figures in status' },
  );
  for (const c of cpus) {
    expect(c).toBeGreaterThanOrEqual(0);
    expect(c).toBeLessThanOrEqual(1);
  }
});

it('opens the fleet breaker of the failing backend on its own error counts', async () => {
  const failing = backends[2]!.address;
  await waitFor(async () => (await endpoints()).get(failing)?.breaker === 'Open', {
    what: "b2's fleet breaker to open",
    timeoutMs: 30_000,
  });
  const events = await listEvents(ns, 'shop');
  const opened = events.find((e) => e.reason === 'BreakerOpened');
  expect(opened?.message).toContain('calls it served in the window (its own counters)');
  const eps = await endpoints();
  for (const b of backends.slice(0, 2)) expect(eps.get(b.address)?.breaker).toBe('Closed');
});

it('predicts the slow backend slow and weights it lowest', async () => {
  const [fast, slow] = [backends[0]!.address, backends[1]!.address];
  const eps = await waitFor(
    async () => {
      const e = await endpoints();
      return (
        e.get(fast)?.predictedLatencyMs !== undefined && e.get(slow)?.predictedLatencyMs !== undefined && e
      );
    },
    { what: 'predictions for b0 and b1', timeoutMs: 30_000 },
  );
  const [pf, ps] = [eps.get(fast)!, eps.get(slow)!];
  console.log(
    `predicted: b0 ${pf.predictedLatencyMs} ms (weight ${pf.weight}), b1 ${ps.predictedLatencyMs} ms (weight ${ps.weight})`,
  );
  expect(ps.predictedLatencyMs).toBeGreaterThan(3 * (pf.predictedLatencyMs as number));
  expect(ps.weight).toBeLessThan(pf.weight as number);
});
