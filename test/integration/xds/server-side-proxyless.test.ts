import type { Operator } from '../../../src/operator/operator.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { quiet, startBackendsOnOwnHosts } from '../../support/grpc.js';
import { createNamespace } from '../../support/kube.js';
import { createPool, getPool } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { waitFor } from '../../support/wait.js';
import { goClient, type GoXdsClient } from '../../support/xds.js';

/**
 * A stock proxyless client (grpc-go, which reports nothing) against a pool of three real `sibyl
 * backend`s — b0 fast, b1 slow (40 ms), b2 failing every call — with no sibyl router and no Envoy. The
 * operator learns from the backends' own Prometheus series (each static endpoint scraped at its own
 * host on the pool's Prometheus port, so the backends listen on 127.0.0.2, .3 and .4) and programs the
 * client over ADS: the failing backend's fleet breaker becomes DRAINING, the slow one's predicted
 * service time a low weight. The client must then keep most calls off both.
 */

let ns: string;
let op: Operator;
let backends: Backend[] = [];
let client: GoXdsClient | undefined;

beforeAll(async () => {
  ns = await createNamespace('proxyless-server-side');
  const own = await startBackendsOnOwnHosts({ log: quiet() });
  backends = own.backends;
  const metricsPort = own.metricsPort;
  backends[0]!.state.update({ latencyMs: 2 });
  backends[1]!.state.update({ latencyMs: 40 });
  backends[2]!.state.update({ latencyMs: 2, errorRate: 1 });
  op = await startOperator(ns, {
    statusIntervalMs: 300,
    control: {
      addr: '127.0.0.1:0',
      insecure: true,
      allowedRouters: [],
      xdsAllowUnauthenticated: true,
      pushIntervalMs: 200,
    },
  });
  await createPool(ns, 'shop', {
    endpoints: backends.map((b) => ({ address: b.address, name: b.name })),
    match: { services: ['sibyl.demo.v1.Demo'] },
    circuitBreaker: { failureThreshold: 5, recoveryTimeout: '10m' },
    telemetry: { interval: '1s', metricsApi: false, orca: false, prometheus: { port: metricsPort } },
  });
  client = goClient('go-server-side', `shop.${ns}`, `127.0.0.1:${op.controlPort}`);
});

afterAll(async () => {
  await client?.close();
  await op?.stop();
  await Promise.all(backends.map((b) => b.stop(0)));
});

interface EndpointView {
  address: string;
  breaker?: string;
  xdsWeight?: number;
  predictedLatencyMs?: number;
}

async function endpoints(): Promise<Map<string, EndpointView>> {
  const p = await getPool(ns, 'shop');
  const eps = (p.status as { endpoints?: EndpointView[] } | undefined)?.endpoints ?? [];
  return new Map(eps.map((e) => [e.address, e]));
}

it('keeps most calls off a slow and a failing backend, from server-side telemetry alone', async () => {
  const go = client as GoXdsClient;
  const [fast, slow, failing] = backends as [Backend, Backend, Backend];
  // Traffic while the operator learns: the client starts on the stock policy with equal weights.
  await waitFor(
    async () => {
      await go.batch(60, { concurrency: 4 });
      const e = await endpoints();
      const f = e.get(failing.address);
      const w = (b: Backend) => e.get(b.address)?.xdsWeight;
      return f?.breaker === 'Open' && (w(slow) ?? Infinity) < (w(fast) ?? 0) && e;
    },
    { what: "b2's fleet breaker open and b1 weighted below b0", timeoutMs: 90_000, intervalMs: 200 },
  );
  console.log(`status: ${JSON.stringify([...(await endpoints()).values()])}`);
  // Once the client has the DRAINING endpoint and the weights (it ACKs within a push), measure.
  await waitFor(async () => (await go.batch(20, { concurrency: 2 })).backends[failing.name] === undefined, {
    what: 'the client to stop calling b2',
    timeoutMs: 30_000,
  });
  const b = await go.batch(400, { concurrency: 4 });
  const share = (x: Backend) => (b.backends[x.name] ?? 0) / b.calls;
  const errors = Object.values(b.errors).reduce((a, n) => a + n, 0);
  console.log(`400 calls: ${JSON.stringify(b.backends)}, errors ${JSON.stringify(b.errors)}`);
  // An even split would give each a third: most calls stay off both, and none fail.
  expect(share(failing)).toBe(0);
  expect(errors).toBe(0);
  expect(share(fast)).toBeGreaterThan(0.6);
  expect(share(slow)).toBeLessThan(0.4);
});
