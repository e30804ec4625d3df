import * as grpc from '@grpc/grpc-js';
import { demoClient, demoPool, echo, startBackends, startRouter } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// Per-endpoint adaptive concurrency (docs/architecture.md, "Balancing, breakers and limits") with real calls: an endpoint at its limit is passed
// over for another; when every endpoint is full, sheddable calls are shed at once and critical ones
// still go through. Slow backends are paused ones (they answer when the test lets them), so "at once"
// is checked as "before any backend answered", not against a clock.
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const withPriority = (p: string) => {
  const m = new grpc.Metadata();
  m.set('x-sibyl-priority', p);
  return m;
};

async function setup(n: number, pool: Record<string, unknown>) {
  const backends = await startBackends(n);
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const router = await startRouter([demoPool(backends, pool)], { metricsAddr: '127.0.0.1:0' });
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  return { backends, router, client };
}

it('an endpoint at its limit is skipped: calls go to the one with room instead of queueing behind it', async () => {
  const { backends, router, client } = await setup(2, {
    concurrency: { algorithm: 'Fixed', initialLimit: 2, minLimit: 1, maxLimit: 2 },
  });
  const [b0] = backends;
  // b0 holds every call it takes until the test lets it go.
  b0?.state.update({ pause: true });
  // Round robin sends two of these to b0, which holds them.
  const held = Promise.all(Array.from({ length: 4 }, () => echo(client, {})));
  // ...and b1 answers its two at once.
  const inflight = () => router.poolEndpoints('demo')?.map((e) => e.inflight);
  await waitFor(() => JSON.stringify(inflight()) === '[2,0]', {
    what: 'b0 to hold two calls',
    intervalMs: 5,
  });
  const servers: string[] = [];
  for (let i = 0; i < 10; i++) {
    // A call sent to b0 would end at this deadline (b0 answers nothing); one queued for its slots, shed.
    const r = await echo(client, {}, { deadlineMs: 10_000 });
    expect(r.status).toMatchObject({ code: grpc.status.OK });
    servers.push(r.response?.server ?? '?');
  }
  // Round robin would have sent half of these to b0; its limit passed them to b1, while b0 still held
  // its two: none of the ten waited for a slot of b0's to free.
  expect(servers).toEqual(Array(10).fill('b1'));
  expect(inflight()).toEqual([2, 0]);
  b0?.state.update({ pause: false });
  const first = await held;
  expect(first.map((r) => r.status.code)).toEqual([0, 0, 0, 0]);
  expect(router.concurrencyLimits('demo')).toEqual({
    pool: 4,
    endpoints: new Map(backends.map((b) => [b.address, 2])),
  });
});

it('a slow pool at its limits sheds sheddable calls quickly and lets critical calls through', async () => {
  const { backends, router, client } = await setup(3, {
    concurrency: { algorithm: 'Fixed', initialLimit: 4, minLimit: 1, maxLimit: 4 },
    circuitBreaker: {
      failureThreshold: 1,
      recoveryTimeout: '60s',
      halfOpenMaxCalls: 1,
      maxEjectionPercent: 50,
    },
    retries: { maxAttempts: 1 },
  });
  const [b0, b1, b2] = backends;
  // b2 fails and its breaker ejects it: the pool counts three endpoints (limit 12) but two take calls,
  // so the endpoints' limits (4 each; 3 for sheddable calls) bind before the pool's.
  b2?.state.update({ errorRate: 1, errorCode: 13 });
  for (let i = 0; i < 3; i++) await echo(client, {});
  await waitFor(async () => (await echo(client, {})).response?.server !== 'b2', { what: 'b2 ejected' });
  // b0 and b1 hold every call they take until the test lets them go.
  b0?.state.update({ pause: true });
  b1?.state.update({ pause: true });

  const settled: string[] = []; // the priorities of the calls that ended, in order
  const send = (p: string) => {
    const r = echo(client, {}, { metadata: withPriority(p) });
    void r.then(() => settled.push(p));
    return r;
  };
  const sheddable = Array.from({ length: 12 }, () => send('sheddable'));
  // The sheddable calls hold what they may of b0 and b1 (3 each) before the critical ones come.
  const inflight = () => JSON.stringify(router.poolEndpoints('demo')?.map((e) => e.inflight));
  await waitFor(() => inflight() === '[3,3,0]', {
    what: 'the sheddable calls to fill their share of b0 and b1',
    intervalMs: 5,
  });
  const critical = [send('critical'), send('critical')];
  await waitFor(() => inflight() === '[4,4,0]', {
    what: 'the critical calls to reach b0 and b1',
    intervalMs: 5,
  });
  // Shed at once, not queued for a slot: the six over the limit end while b0 and b1 still hold every
  // call they took, so none of them waited for a slow backend to answer.
  await waitFor(() => settled.length === 6, { what: 'six sheddable calls to end' });
  expect(settled).toEqual(Array(6).fill('sheddable'));
  expect(inflight()).toBe('[4,4,0]');
  b0?.state.update({ pause: false });
  b1?.state.update({ pause: false });
  const s = await Promise.all(sheddable);
  const c = await Promise.all(critical);

  const ok = s.filter((r) => r.status.code === grpc.status.OK);
  const shed = s.filter((r) => r.status.code === grpc.status.RESOURCE_EXHAUSTED);
  expect(ok).toHaveLength(6); // 3 per endpoint
  expect(shed).toHaveLength(6);
  expect(shed.some((r) => r.status.details.includes('every endpoint is at its concurrency limit'))).toBe(
    true,
  );
  expect(c.map((r) => r.status.code)).toEqual([grpc.status.OK, grpc.status.OK]);
  expect(c.map((r) => r.response?.server).sort()).toEqual(['b0', 'b1']);
  expect(router.concurrencyLimits('demo')?.pool).toBe(12);
});
