import * as grpc from '@grpc/grpc-js';
import { demoClient, demoPool, echo, startBackends, startRouter } from '../../support/grpc.js';

// RFC 6761: a name under .localhost is loopback. Backends on loopback are listed by such names (the API
// server refuses 127.0.0.0/8 in EndpointSlices), so the router's dialer must resolve them itself.
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

it('routes to an endpoint listed as b1.localhost:PORT (dialled on 127.0.0.1)', async () => {
  const backends = await startBackends(1, { listen: '127.0.0.1:0' });
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const port = Number(backends[0]?.address.split(':').pop());
  const address = `b1.localhost:${port}`;
  const pool = { ...demoPool(backends), endpoints: [{ address }] };
  const router = await startRouter([pool]);
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());

  for (let i = 0; i < 3; i++) {
    const r = await echo(client, { message: `hello ${i}` });
    expect(r.status.code).toBe(grpc.status.OK);
    expect(r.response?.server).toBe('b0');
    expect(r.response?.message).toBe(`hello ${i}`);
  }
  expect(router.poolEndpoints('demo')?.map((e) => e.address)).toEqual([address]);
});

it('a name under .localhost on a port nobody serves fails as UNAVAILABLE, not as a DNS error', async () => {
  const backends = await startBackends(1);
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))));
  const port = Number(backends[0]?.address.split(':').pop());
  await backends[0]?.stop(100);
  const router = await startRouter([
    { ...demoPool([]), endpoints: [{ address: `gone.localhost:${port}` }], retries: { maxAttempts: 1 } },
  ]);
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  const r = await echo(client, {});
  expect(r.status.code).toBe(grpc.status.UNAVAILABLE);
  expect(r.status.details).toMatch(/ECONNREFUSED/);
  expect(r.status.details).not.toMatch(/ENOTFOUND|EAI_AGAIN/);
});
