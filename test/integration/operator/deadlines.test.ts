import type { Operator } from '../../../src/operator/operator.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { echo, quiet, startBackendsOnOwnHosts, type DemoClient } from '../../support/grpc.js';
import { createNamespace, kubectlOk } from '../../support/kube.js';
import { Load } from '../../support/load.js';
import { createPool, getPool } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { waitFor } from '../../support/wait.js';
import { startEnvoy, type EnvoyProcess } from '../../support/xds.js';

/**
 * Per-method deadlines (spec.timeout.predicted) end to end: three real `sibyl backend`s export
 * grpc_server_handling_seconds per method, the operator (real kube-apiserver) scrapes them, lists the
 * deadline in force for Echo in status.deadlines (kubectl describe shows it), and programs a real
 * Envoy 1.40's Echo route with it as per_try_timeout. A paused backend then holds no call: Envoy cuts
 * the try at its deadline and retries it on another backend (Echo is idempotent).
 */

const ECHO = '/sibyl.demo.v1.Demo/Echo';

interface DeadlineView {
  method: string;
  predictedP99Ms: number;
  perTryTimeoutMs: number;
  source: string;
}

let ns: string;
let op: Operator;
let backends: Backend[] = [];
let load: Load | undefined;
let envoy: EnvoyProcess | undefined;
let client: DemoClient | undefined;

beforeAll(async () => {
  ns = await createNamespace('deadlines');
  const own = await startBackendsOnOwnHosts({ log: quiet() });
  backends = own.backends;
  for (const b of backends) b.state.update({ latencyMs: 2 });
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
    idempotentMethods: [ECHO],
    timeout: { default: '10s', predicted: { multiplier: 2, floor: '100ms', ceiling: '2s' } },
    // Only the per-try timeout may take the paused backend out of the calls' way.
    circuitBreaker: { failureThreshold: 1000, recoveryTimeout: '10m' },
    telemetry: { interval: '1s', metricsApi: false, orca: false, prometheus: { port: own.metricsPort } },
  });
  // 50 calls/s straight to the backends (a client that reports nothing): their own histograms only.
  load = new Load({ targets: backends.map((b) => b.address), rps: 50, deadlineMs: 5000 }).start();
});

afterAll(async () => {
  client?.close();
  await envoy?.kill();
  await load?.stop();
  load?.close();
  await op?.stop();
  for (const b of backends) b.state.update({ pause: false });
  await Promise.all(backends.map((b) => b.stop(0)));
});

async function deadlines(): Promise<DeadlineView[]> {
  const p = await getPool(ns, 'shop');
  return (p.status as { deadlines?: DeadlineView[] } | undefined)?.deadlines ?? [];
}

it("lists the deadline in force for each method called, from the backends' own histograms or the model", async () => {
  const echoDeadline = await waitFor(async () => (await deadlines()).find((d) => d.method === ECHO), {
    what: 'status.deadlines to list Echo',
    timeoutMs: 60_000,
  });
  console.log(`status.deadlines: ${JSON.stringify(await deadlines())}`);
  expect(['Model', 'Observed']).toContain(echoDeadline.source);
  expect(echoDeadline.predictedP99Ms).toBeGreaterThan(0);
  // clamp(2 × p99, 100 ms, 2 s)
  expect(echoDeadline.perTryTimeoutMs).toBeGreaterThanOrEqual(100);
  expect(echoDeadline.perTryTimeoutMs).toBeLessThanOrEqual(2000);
  expect(echoDeadline.perTryTimeoutMs).toBeGreaterThanOrEqual(
    Math.min(2000, Math.round(1.8 * echoDeadline.predictedP99Ms)),
  );
  const described = await kubectlOk(['describe', 'backendpool', 'shop', '-n', ns]);
  expect(described).toContain('Deadlines:');
  expect(described).toContain('Per Try Timeout Ms');
  expect(described).toContain(ECHO);
});

it("programs Envoy's Echo route with the deadline as per_try_timeout, and a try on a paused backend is cut and retried elsewhere", async () => {
  ({ envoy, client } = await startEnvoy('envoy-deadlines', 341, {
    server: `127.0.0.1:${op.controlPort}`,
    insecure: true,
    nodeId: 'envoy-deadlines',
  }));
  const e = envoy;
  const routeTimeoutMs = async (): Promise<number | undefined> => {
    const dump = JSON.parse(await e.adminGet('/config_dump?resource=dynamic_route_configs')) as {
      configs?: { route_config?: { virtual_hosts?: { routes?: RouteView[] }[] } }[];
    };
    const routes = dump.configs?.flatMap((c) => c.route_config?.virtual_hosts?.[0]?.routes ?? []) ?? [];
    const perTry = routes.find((r) => r.match?.path === ECHO)?.route?.retry_policy?.per_try_timeout;
    return perTry === undefined ? undefined : Math.round(parseFloat(perTry) * 1000);
  };
  const programmed = await waitFor(routeTimeoutMs, { what: "Envoy's Echo route with a per_try_timeout" });
  const listed = (await deadlines()).find((d) => d.method === ECHO);
  console.log(`Envoy's Echo per_try_timeout: ${programmed} ms; status: ${JSON.stringify(listed)}`);
  // the deadline status lists (it may have moved past its hysteresis since Envoy took it)
  await waitFor(
    async () =>
      (await routeTimeoutMs()) === (await deadlines()).find((d) => d.method === ECHO)?.perTryTimeoutMs,
    {
      what: "Envoy's per_try_timeout to match status",
    },
  );

  // b1 holds every call it gets; Envoy cuts each such try and sends it to another backend.
  const c = client as DemoClient;
  for (let i = 0; i < 10; i++) expect((await echo(c, {}, { deadlineMs: 5000 })).error).toBeUndefined();
  await load?.stop(); // the deadline stays as listed: no new figures while b1 is held
  backends[1]!.state.update({ pause: true });
  const seen: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (let i = 0; i < 30; i++) {
    const r = await echo(c, {}, { deadlineMs: 5000 });
    if (r.error) errors[r.error.code] = (errors[r.error.code] ?? 0) + 1;
    else {
      const b = String(r.headers?.get('x-sibyl-backend')[0]);
      seen[b] = (seen[b] ?? 0) + 1;
    }
  }
  const stats = await e.adminGet('/stats?filter=upstream_rq_per_try_timeout');
  console.log(
    `30 calls with b1 paused: ${JSON.stringify(seen)}, errors ${JSON.stringify(errors)}; ${stats.trim()}`,
  );
  backends[1]!.state.update({ pause: false });
  expect(errors).toEqual({});
  expect(seen.b1).toBeUndefined();
  const cut = [...stats.matchAll(/upstream_rq_per_try_timeout: (\d+)/g)].reduce(
    (a, m) => a + Number(m[1]),
    0,
  );
  expect(cut).toBeGreaterThan(0);
});

interface RouteView {
  match?: { path?: string; prefix?: string };
  route?: { retry_policy?: { per_try_timeout?: string } };
}
