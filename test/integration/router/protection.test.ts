import * as grpc from '@grpc/grpc-js';
import { demoClient, demoPool, echo, startBackends, startRouter } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// The pool's circuit breakers (src/breaker) and concurrency limiter (src/limit), wired into the router.
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(pool: Record<string, unknown>) {
  const backends = await startBackends(2);
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const router = await startRouter([demoPool(backends, pool)], { metricsAddr: '127.0.0.1:0' });
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  const metrics = async () => (await fetch(`http://${router.metricsAddress}/metrics`)).text();
  return { backends, router, client, metrics };
}

it('a failing endpoint is ejected by its breaker, then let back in after recovery', async () => {
  const { backends, client, metrics } = await setup({
    circuitBreaker: {
      failureThreshold: 3,
      recoveryTimeout: '500ms',
      halfOpenMaxCalls: 1,
      maxEjectionPercent: 50,
    },
    retries: { maxAttempts: 1 },
  });
  const [b0] = backends;
  b0?.state.update({ errorRate: 1, errorCode: 13 });
  const codes: number[] = [];
  for (let i = 0; i < 20; i++) codes.push((await echo(client, {})).status.code);
  // RoundRobin alternates: b0 fails three times, then only b1 answers.
  expect(codes.filter((c) => c === grpc.status.INTERNAL)).toHaveLength(3);
  expect(await metrics()).toMatch(
    new RegExp(`sibyl_router_breaker_state\\{pool="demo",endpoint="${b0?.address}",state="Open"\\} 1`),
  );

  b0?.state.update({ errorRate: 0 });
  // Once the recovery timeout (500 ms) has passed, a half-open trial call lets it back in.
  await waitFor(
    async () => {
      const r = await echo(client, {});
      return r.response?.server === 'b0';
    },
    { what: 'b0 to take calls again', timeoutMs: 10_000, intervalMs: 10 },
  );
  expect(await metrics()).toMatch(new RegExp(`endpoint="${b0?.address}",state="Closed"\\} 1`));
});

it('the concurrency limit sheds calls beyond it with RESOURCE_EXHAUSTED', async () => {
  // spec.concurrency is per endpoint: 2 each, so the pool of two admits 4.
  const { backends, client, metrics } = await setup({
    concurrency: { algorithm: 'Fixed', initialLimit: 2, minLimit: 1, maxLimit: 2 },
  });
  // Both hold every call they take until the test lets them go, so no slot frees while the ten arrive
  // (with a fixed service time, a loaded machine spreading them out would free some).
  for (const b of backends) b.state.update({ pause: true });
  let ended = 0;
  const calls = Array.from({ length: 10 }, () => echo(client, {}).finally(() => ended++));
  await waitFor(() => ended === 6, { what: 'six calls to end while four are held' });
  for (const b of backends) b.state.update({ pause: false });
  const results = await Promise.all(calls);
  const ok = results.filter((r) => r.status.code === grpc.status.OK).length;
  const shed = results.filter((r) => r.status.code === grpc.status.RESOURCE_EXHAUSTED);
  expect(ok).toBe(4);
  expect(shed).toHaveLength(6);
  expect(shed[0]?.status.details).toContain('pool demo is overloaded');
  const text = await metrics();
  expect(text).toMatch(/sibyl_router_concurrency_limit\{pool="demo"\} 4/);
  for (const b of backends) {
    expect(text).toContain(`sibyl_router_endpoint_concurrency_limit{pool="demo",endpoint="${b.address}"} 2`);
  }
  const after = await echo(client, {});
  expect(after.status.code).toBe(grpc.status.OK);
});

it('ORCA load reports in backend trailers reach the balancer', async () => {
  const backends = await startBackends(1, { orca: true, concurrency: 4 });
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const router = await startRouter([demoPool(backends)]);
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  const r = await echo(client, {});
  expect(r.status.code).toBe(grpc.status.OK);
  expect(r.status.metadata.get('endpoint-load-metrics-bin')).toHaveLength(1); // passed on to the client too
  const [ep] = router.poolEndpoints('demo') ?? [];
  expect(ep?.load).toEqual({
    cpu: expect.any(Number),
    memory: expect.any(Number),
    utilization: expect.any(Number),
    atMs: expect.any(Number),
  });
  expect(ep?.load?.memory).toBeGreaterThan(0);
  expect(ep?.inflight).toBe(0);
});

describe('hedging', () => {
  const hedged = {
    hedging: { enabled: true, delay: '50ms', maxPercent: 100 },
    idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
  };

  it('sends an idempotent call to a second endpoint when the first is slow; the loser is cancelled', async () => {
    const { backends, client, metrics } = await setup(hedged);
    backends[0]?.state.update({ pause: true });
    // b0 answers nothing: a call it took that no hedge rescued would end at this deadline.
    const results = await Promise.all(
      Array.from({ length: 10 }, () => echo(client, { message: 'h' }, { deadlineMs: 10_000 })),
    );
    expect(results.map((r) => r.response?.server)).toEqual(Array(10).fill('b1'));
    expect(await metrics()).toMatch(/sibyl_router_hedges_total\{pool="demo"\} [1-9]/);
    // b0's held calls (the losers) were cancelled by the router.
    await waitFor(
      async () => {
        const m = await backends[0]?.metrics.requests.get();
        return m?.values.some((v) => v.labels.code === '1' && v.value >= 3);
      },
      { what: 'b0 to see its hedged-away calls cancelled' },
    );
  });

  it('does not hedge methods that are not idempotent', async () => {
    const { backends, client, metrics } = await setup({
      ...hedged,
      idempotentMethods: ['/sibyl.demo.v1.Demo/Other'],
    });
    backends[0]?.state.update({ pause: true });
    // b1 answers its two well within the deadline, however loaded the machine; b0's two end at it.
    const results = await Promise.all(
      Array.from({ length: 4 }, () => echo(client, {}, { deadlineMs: 3000 })),
    );
    const codes = results.map((r) => r.status.code).sort();
    expect(codes).toEqual([0, 0, 4, 4]);
    expect(await metrics()).not.toMatch(/sibyl_router_hedges_total\{pool="demo"\} [1-9]/);
    backends[0]?.state.update({ pause: false });
  });
});
