import * as grpc from '@grpc/grpc-js';
import type { CallOutcome } from '../../../src/balancer/index.js';
import { loadModel } from '../../../src/model/artifact.js';
import { createQuantileFn } from '../../../src/model/quantiles.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import {
  demoClient,
  demoPool,
  echo,
  startBackends,
  startRouter,
  type DemoClient,
} from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// Per-try deadlines and hedge delays from each call's predicted quantiles (issue 17; src/router/
// try-deadline.ts, hedge-delay.ts): the shipped model (models/latency) installed in a real router in
// this process, real backends and a real grpc-js client on loopback. A stalled backend is the
// sample backend paused: it holds every call it gets until the pause is lifted, and counts a call the
// router cancels (RST_STREAM CANCEL) as CANCELLED.
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const ECHO = '/sibyl.demo.v1.Demo/Echo';
// A try's deadline: 3 × its predicted p99, at least 500 ms (well above a healthy call here, however
// busy the machine), at most 2 s; the call's own is 20 s, so a call that ends sooner ended by its
// try's deadline. Calls are sent a few at a time: a cold router's first burst (connections, JIT) is
// no healthy call's latency.
const TIMEOUT = { default: '20s', predicted: { multiplier: 3, floor: '500ms', ceiling: '2s' } };

async function setup(n: number, pool: Record<string, unknown>, withModel = true) {
  const backends = await startBackends(n, { settings: { latencyMs: 2, jitter: 0 } });
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const router = await startRouter([demoPool(backends, pool)]);
  cleanup.push(() => router.close());
  if (withModel) router.setQuantiles(createQuantileFn(await loadModel('models/latency')));
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  return { backends, router, client };
}

/** A counter's value for the labels given (summed over the others). */
async function counted(
  metric: { get(): Promise<{ values: Array<{ labels: object; value: number; metricName?: string }> }> },
  labels: Record<string, string>,
  name?: string,
): Promise<number> {
  let n = 0;
  for (const v of (await metric.get()).values) {
    if (name && v.metricName !== name) continue;
    const l = v.labels as Record<string, unknown>;
    if (Object.entries(labels).every(([k, x]) => l[k] === x)) n += v.value;
  }
  return n;
}

/**
 * Every try's outcome as the router's observer sees it (the policy and the breaker are told the same
 * outcome by the call's handle), with the endpoint's address.
 */
function outcomes(router: { setObserver(o: unknown): void }): Array<CallOutcome & { address: string }> {
  const seen: Array<CallOutcome & { address: string }> = [];
  router.setObserver({
    started: () => undefined,
    ended: (_pool: string, call: { endpoint: { address: string } }, _c: unknown, o: CallOutcome) =>
      seen.push({ ...o, address: call.endpoint.address }),
  });
  return seen;
}

/** Calls `b` counted as cancelled by the router (its own request counter). */
const cancelledAt = (b: Backend) => counted(b.metrics.requests, { method: 'Echo', code: '1' });

/** `n` Echo calls at once, each with a 10 s deadline; their statuses. */
async function burst(client: DemoClient, n: number, payloadBytes = 0): Promise<grpc.StatusObject[]> {
  const calls = Array.from({ length: n }, (_, i) =>
    echo(client, { message: `m${i}`, payload: new Uint8Array(payloadBytes) }, { deadlineMs: 10_000 }),
  );
  return (await Promise.all(calls)).map((r) => r.status);
}

it('cancels a stalled try at its predicted deadline and retries it elsewhere: the client succeeds', async () => {
  const { backends, router, client } = await setup(3, {
    balancing: { policy: 'Predictive' },
    idempotentMethods: [ECHO],
    retries: { maxAttempts: 3, budgetPercent: 100 },
    timeout: TIMEOUT,
  });
  const [b0] = backends as [Backend];
  const seen = outcomes(router);
  // the policy's figures for each endpoint, which the model reads a call's quantiles from
  for (let i = 0; i < 10; i++) for (const s of await burst(client, 6)) expect(s.code).toBe(grpc.status.OK);
  b0.state.update({ pause: true });
  const retried = () => counted(router.metrics.tryTimeouts, { pool: 'demo', outcome: 'retried' });
  await waitFor(
    async () => {
      // every call succeeds, those whose first try stalled at b0 included
      for (const s of await burst(client, 6)) expect(s.code).toBe(grpc.status.OK);
      return (await retried()) > 0;
    },
    { what: 'a try at the stalled backend to time out and be retried' },
  );
  // the router cancelled the stalled try upstream: the paused backend saw the cancellation
  await waitFor(async () => (await cancelledAt(b0)) > 0, { what: 'the stalled try to be cancelled at b0' });
  expect(await counted(router.metrics.tryTimeouts, { pool: 'demo', outcome: 'failed' })).toBe(0);
  expect(await counted(router.metrics.retries, { pool: 'demo', reason: 'DEADLINE_EXCEEDED' })).toBe(
    await retried(),
  );
  // the cut try reached the policy as censored (its latency, the deadline, a lower bound), not as an
  // answer; every censored try is one the router cut at b0
  const cut = seen.filter((o) => o.censored);
  expect(cut.length).toBeGreaterThan(0);
  for (const o of cut) expect(o).toMatchObject({ address: b0.address, code: grpc.status.DEADLINE_EXCEEDED });
  expect(seen.filter((o) => o.address === b0.address && o.code === grpc.status.DEADLINE_EXCEEDED)).toEqual(
    cut,
  );
});

it('answers DEADLINE_EXCEEDED when a try times out on a method that is not idempotent', async () => {
  // No model: the deadline comes from the router's observed p99 of the method; round robin, so calls
  // reach the stalled backend for certain.
  const { backends, router, client } = await setup(
    2,
    {
      balancing: { policy: 'RoundRobin' },
      retries: { maxAttempts: 3, budgetPercent: 100 },
      timeout: TIMEOUT,
    },
    false,
  );
  const [b0] = backends as [Backend];
  for (let i = 0; i < 10; i++) for (const s of await burst(client, 4)) expect(s.code).toBe(grpc.status.OK);
  b0.state.update({ pause: true });
  const results = await Promise.all(
    Array.from({ length: 4 }, (_, i) => echo(client, { message: `n${i}` }, { deadlineMs: 10_000 })),
  );
  const failed = results.filter((r) => r.status.code !== grpc.status.OK);
  expect(failed.length).toBe(2); // round robin: half went to b0, and were not sent again
  for (const r of failed) {
    expect(r.status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(r.status.details).toMatch(/within the try's deadline of \d+ms \(3 × the observed p99 of .* ms/);
  }
  expect(await counted(router.metrics.tryTimeouts, { pool: 'demo', outcome: 'failed' })).toBe(2);
  expect(await counted(router.metrics.tryTimeouts, { pool: 'demo', outcome: 'retried' })).toBe(0);
  await waitFor(async () => (await cancelledAt(b0)) === 2, {
    what: 'both stalled tries to be cancelled at b0',
  });
});

it("hedges after each call's own predicted quantile", async () => {
  const { backends, router, client } = await setup(3, {
    balancing: { policy: 'Predictive' },
    idempotentMethods: [ECHO],
    hedging: { enabled: true, delay: 'Predicted', quantile: 0.9, maxPercent: 50 },
  });
  for (const b of backends) b.state.update({ perKiBMs: 1 }); // a 64 KiB call takes ~66 ms, a small one 2 ms
  const delays = () => router.metrics.hedgeDelay;
  const sum = () =>
    counted(delays(), { pool: 'demo', source: 'model' }, 'sibyl_router_hedge_delay_seconds_sum');
  const count = () =>
    counted(delays(), { pool: 'demo', source: 'model' }, 'sibyl_router_hedge_delay_seconds_count');
  // the policy learns the method's latency against payload from both sizes
  for (let i = 0; i < 5; i++) {
    await burst(client, 6);
    await burst(client, 6, 64 * 1024);
  }
  const mean = async (payloadBytes: number) => {
    const [s0, c0] = [await sum(), await count()];
    for (const s of await burst(client, 6, payloadBytes)) expect(s.code).toBe(grpc.status.OK);
    const calls = (await count()) - c0;
    expect(calls).toBe(6); // every call's delay was its own prediction
    return ((await sum()) - s0) / calls;
  };
  const small = await mean(0);
  const large = await mean(64 * 1024);
  console.log(
    `predicted hedge delay (p90): ${(small * 1000).toFixed(1)} ms for an empty Echo, ${(large * 1000).toFixed(1)} ms for 64 KiB (service ~2 ms + 1 ms/KiB)`,
  );
  // a large call waits longer before its hedge than a small one: the delay is the call's, not the
  // pool's (measured: about twice as long; the bound leaves room for the model's reading of a busy
  // machine)
  expect(large).toBeGreaterThan(1.3 * small);

  // A stalled first try is hedged after its predicted delay, and the client gets the hedge's answer.
  const [b0] = backends as [Backend];
  const seen = outcomes(router);
  b0.state.update({ pause: true });
  const hedged = () => counted(router.metrics.hedges, { pool: 'demo' });
  await waitFor(
    async () => {
      for (const s of await burst(client, 6)) expect(s.code).toBe(grpc.status.OK);
      return (await cancelledAt(b0)) > 0;
    },
    { what: 'a stalled try to be hedged, and cancelled once the hedge answered' },
  );
  expect(await hedged()).toBeGreaterThan(0);
  // the stalled first try lost its race: cancelled and censored (a lower bound, not a short answer)
  const lost = seen.filter((o) => o.address === b0.address && o.code === grpc.status.CANCELLED);
  expect(lost.length).toBeGreaterThan(0);
  for (const o of lost) expect(o.censored).toBe(true);
  for (const o of seen.filter((x) => x.code === grpc.status.OK)) expect(o.censored).toBeUndefined();
});
