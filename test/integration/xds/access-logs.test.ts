import { Registry } from 'prom-client';
import { RoutingState } from '../../../src/control/routing-state.js';
import { CacheView } from '../../../src/operator/cache-view.js';
import { ModelManager } from '../../../src/operator/model-manager.js';
import { TelemetryIntake } from '../../../src/operator/telemetry-intake.js';
import { FleetBreakers, FleetTelemetry } from '../../../src/telemetry/fleet.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { systemClock } from '../../../src/util/clock.js';
import { demoClient, echo, quiet, startBackends, type DemoClient } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';
import { EnvoyProcess, poolInput, startAds, type Ads } from '../../support/xds.js';
import { MethodLatencies } from '../../../src/telemetry/method-latency.js';

/**
 * "ALS samples reach the model": two real Envoys 1.40, configured by sibyl's ADS, stream their
 * upstream access logs to the ALS service beside it; the operator's intake (the one control-plane.ts
 * wires) turns them into the fleet view and training samples. No sibyl router anywhere: b0 is fast,
 * b1 slow, b2 fails every call.
 */

const KEY = 'xds-als/demo';
let backends: Backend[];
let ads: Ads;
const envoys: EnvoyProcess[] = [];
const clients: DemoClient[] = [];
const telemetry = new FleetTelemetry(systemClock);
const model = new ModelManager(new RoutingState(1), quiet(), new Registry());
const methods = new MethodLatencies(30_000);
const intake = new TelemetryIntake({
  telemetry,
  methods,
  caches: new CacheView(),
  addSamples: (s) => model.addSamples(s),
  changed: () => undefined,
  clock: systemClock,
});
/** Calls each backend answered, as the clients saw them (x-sibyl-backend), and failures by code. */
const answered: Record<string, number> = {};
const failed: Record<string, number> = {};

beforeAll(async () => {
  await model.loadDefault('models/latency');
  backends = await startBackends(3);
  backends[1]!.state.update({ latencyMs: 40 });
  backends[2]!.state.update({ errorRate: 1 });
  ads = await startAds({ accessLogs: { intervalMs: 500, onReport: (r) => intake.accessLogs(r) } });
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  for (const [i, baseId] of [321, 322].entries()) {
    const e = await EnvoyProcess.create(`envoy-als-${i}`, baseId, {
      server: ads.address,
      insecure: true,
      nodeId: `envoy-als-${i}`,
    });
    envoys.push(e);
    e.start();
  }
  await Promise.all(envoys.map((e) => e.ready()));
  clients.push(...envoys.map((e) => demoClient(e.listen)));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(envoys.map((e) => e.kill()));
  await ads?.stop();
  await Promise.all(backends.map((b) => b.stop()));
});

/** `n` calls through each Envoy, four at a time per Envoy. */
async function traffic(n: number): Promise<void> {
  await Promise.all(
    clients.flatMap((c) =>
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < n / 4; i++) {
          const r = await echo(c, {}, { deadlineMs: 5000 });
          if (r.error) failed[r.error.code] = (failed[r.error.code] ?? 0) + 1;
          else {
            const b = String(r.headers?.get('x-sibyl-backend')[0]);
            answered[b] = (answered[b] ?? 0) + 1;
          }
        }
      }),
    ),
  );
}

const addr = (i: number) => backends[i]!.address;

it("gives the fleet view every endpoint's calls, latency and errors from the access logs alone", async () => {
  await traffic(200);
  // Every answered call was logged (Envoy flushes each second): the counts match what clients saw.
  await waitFor(
    () =>
      telemetry.view(KEY, addr(0))?.calls === answered.b0 &&
      telemetry.view(KEY, addr(1))?.calls === answered.b1,
    { what: 'the fleet view to count every call b0 and b1 answered', timeoutMs: 15_000 },
  );
  const [fast, slow, failing] = [0, 1, 2].map((i) => telemetry.view(KEY, addr(i)));
  console.log(
    `ALS fleet view: b0 ${fast?.calls} calls p50 ${fast?.p50Ms?.toFixed(1)} ms; b1 ${slow?.calls} calls p50 ${slow?.p50Ms?.toFixed(1)} ms; b2 ${failing?.calls} calls, ${failing?.failures} failed; clients: ${JSON.stringify({ answered, failed })}`,
  );
  expect(fast).toMatchObject({ routers: 2, failures: 0, inflight: 0 });
  expect(slow).toMatchObject({ routers: 2, failures: 0 });
  expect(slow?.p50Ms).toBeGreaterThanOrEqual(30); // 40 ms of service time, seen from Envoy
  expect(fast?.p50Ms).toBeLessThan((slow?.p50Ms as number) / 2);
  expect(failing?.calls).toBeGreaterThan(0);
  expect(failing?.errorRate).toBe(1);
  expect(answered.b2).toBeUndefined(); // every call b2 failed was retried elsewhere, or failed
  // Envoy logs each attempt's :path: latencies per method, for per-method deadlines
  const echo = methods.figures(KEY, systemClock.now()).find((m) => m.method === '/sibyl.demo.v1.Demo/Echo');
  console.log(`ALS per method: ${JSON.stringify(echo)}`);
  expect(echo?.calls).toBeGreaterThan(0);
});

it('opens the fleet breaker of the endpoint failing on both Envoys', () => {
  const t = new FleetBreakers(telemetry, systemClock).evaluate(KEY, addr(2), {
    failureThreshold: 5,
    recoveryTimeoutMs: 30_000,
  });
  expect(t).toMatchObject({ to: 'Open', message: expect.stringContaining('failed on 2 of 2 routers') });
  for (const i of [0, 1])
    expect(
      new FleetBreakers(telemetry, systemClock).evaluate(KEY, addr(i), {
        failureThreshold: 5,
        recoveryTimeoutMs: 30_000,
      }),
    ).toBeUndefined();
});

it('ALS samples reach the model', async () => {
  // The first interval's calls had no fleet view to be samples of; later ones have.
  const before = model.status.samples;
  await traffic(200);
  await waitFor(() => model.status.samples > before, {
    what: 'samples from the access logs',
    timeoutMs: 15_000,
  });
  const live = model.liveError();
  console.log(`model: ${model.status.samples} samples from access logs; live error ${JSON.stringify(live)}`);
  expect(live?.samples).toBeGreaterThan(0);
  // A sample of a slow call carries b1's own figures: the model is asked about the endpoint it went to.
  const slowP50 = telemetry.view(KEY, addr(1))?.p50Ms as number;
  expect(model.predict(KEY, addr(1), telemetry.view(KEY, addr(1)))?.latencyMs).toBeGreaterThan(slowP50 / 3);
});
