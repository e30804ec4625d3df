import * as grpc from '@grpc/grpc-js';
import type { Backend } from '../../../src/tools/backend/server.js';
import {
  demoClient,
  demoPool,
  echo,
  serverStream,
  startBackends,
  startRouter,
  type DemoClient,
} from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// Probes (src/router/probe.ts): Predictive explores an avoided endpoint with shadow copies of idempotent
// unary calls, whose answers are discarded, instead of sending it clients' calls. Real backends, the
// real router and a grpc-js client on loopback.
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const ECHO = '/sibyl.demo.v1.Demo/Echo';

/** Calls a backend served of `method`, from its own request counter. */
async function served(b: Backend, method = 'Echo'): Promise<number> {
  let n = 0;
  for (const v of (await b.metrics.requests.get()).values) if (v.labels.method === method) n += v.value;
  return n;
}

/** `n` Echo calls, `parallel` at a time, each with its own message; the backend that answered each. */
async function echoes(client: DemoClient, n: number, parallel = 4): Promise<string[]> {
  const servers: string[] = [];
  let next = 0;
  const loop = async () => {
    while (next < n) {
      const message = `call-${next++}`;
      const r = await echo(client, { message });
      // the client's own answer, never a probe's (a second answer on one stream could not even parse)
      expect(r.status.code).toBe(grpc.status.OK);
      expect(r.response?.message).toBe(message);
      expect(r.response?.requestMetadata?.['x-sibyl-probe']).toBeUndefined();
      servers.push(r.response?.server as string);
    }
  };
  await Promise.all(Array.from({ length: parallel }, loop));
  return servers;
}

const count = (servers: string[], name: string) => servers.filter((s) => s === name).length;

it('probes reach the slowed endpoint, clients do not, and it wins back traffic once it recovers', async () => {
  const backends = await startBackends(3, { settings: { latencyMs: 2, jitter: 0 } });
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const pool = demoPool(backends, {
    balancing: { policy: 'Predictive', exploration: 0.5 },
    idempotentMethods: [ECHO],
    retries: { maxAttempts: 1 },
  });
  const router = await startRouter([pool]);
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  const probes = async () => {
    let n = 0;
    for (const v of (await router.metrics.probes.get()).values) if (v.labels.pool === 'demo') n += v.value;
    return n;
  };
  const [b0] = backends as [Backend];
  b0.state.update({ slowdown: 50 }); // 100 ms to the others' 2 ms

  // Until the router has measured b0, clients' calls may go there by its score; not afterwards.
  await echoes(client, 200);
  const before = { served: await served(b0), probes: await probes() };
  const calls = await echoes(client, 400);
  // every probe reached a backend once, and none is a client's call (no retries, no hedges here)
  const total = async () => (await Promise.all(backends.map((b) => served(b)))).reduce((a, x) => a + x, 0);
  await waitFor(async () => (await total()) === 600 + (await probes()), { what: 'probes to finish' });
  const probed = (await served(b0)) - before.served - count(calls, 'b0');
  expect(probed).toBeGreaterThan(0);
  expect(count(calls, 'b0')).toBeLessThanOrEqual(0.02 * calls.length);
  // within the budget: 5% of the calls, and a reserve of one a second
  expect((await probes()) - before.probes).toBeLessThan(0.05 * calls.length + 30);

  // A method the pool does not list as idempotent gets no probe, though b0 is still avoided.
  const sent = await probes();
  for (let i = 0; i < 100; i++) {
    const r = await serverStream(client, { count: 1 }).done;
    expect(r.status.code).toBe(grpc.status.OK);
  }
  expect(await probes()).toBe(sent);
  const streams = await Promise.all(backends.map((b) => served(b, 'ServerStream')));
  expect(streams.reduce((a, x) => a + x, 0)).toBe(100);

  // b0 recovers: probes find it fast, and clients' calls go there again.
  b0.state.update({ slowdown: 1 });
  const recovered = { served: await served(b0) };
  const after: string[] = [];
  await waitFor(
    async () => {
      const window = await echoes(client, 100);
      after.push(...window);
      return count(window, 'b0') >= 20;
    },
    { what: 'b0 to win back a share of the calls', timeoutMs: 30_000, intervalMs: 0 },
  );
  await waitFor(async () => (await total()) === 600 + after.length + (await probes()), {
    what: 'probes to finish',
  });
  expect((await served(b0)) - recovered.served - count(after, 'b0')).toBeGreaterThan(0);
});
