import * as grpc from '@grpc/grpc-js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { demoClient, demoPool, echo, serverStream, startBackends, startRouter } from '../../support/grpc.js';
import { freePort, waitFor } from '../../support/wait.js';

// Endpoints failing, dying and refusing: what the client sees and where the next calls go.
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(n: number, pool: Record<string, unknown> = {}, backendOpts = {}) {
  const backends = await startBackends(n, backendOpts);
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))).then(() => undefined));
  const router = await startRouter([demoPool(backends, pool)]);
  cleanup.push(() => router.close());
  const client = demoClient(router.address);
  cleanup.push(() => client.close());
  return { backends, router, client };
}

async function servers(client: ReturnType<typeof demoClient>, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await echo(client, {});
    expect(r.error).toBeUndefined();
    out.push(r.response?.server as string);
  }
  return out;
}

describe('failover', () => {
  it('a backend killed mid-stream: the client gets UNAVAILABLE, and later calls go to the others', async () => {
    const { backends, client } = await setup(3);
    const { call, done } = serverStream(client, { count: 100_000, sleepMs: 5 });
    const first = await new Promise<{ server: string }>((resolve) => call.once('data', resolve));
    const victim = backends.find((b) => b.name === first.server) as Backend;
    victim.kill();
    const r = await done;
    expect(r.status.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.response?.length).toBeGreaterThan(0);
    const next = await servers(client, 20);
    expect(next).not.toContain(victim.name);
    expect(new Set(next).size).toBe(2);
  });

  it('an endpoint that refuses connections is skipped, and calls retried elsewhere succeed', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const backends = await startBackends(1);
    cleanup.push(() => backends[0]?.stop(100));
    const router = await startRouter([
      { ...demoPool(backends), endpoints: [{ address: dead }, { address: backends[0]?.address }] },
    ]);
    cleanup.push(() => router.close());
    const client = demoClient(router.address);
    cleanup.push(() => client.close());
    expect(await servers(client, 20)).toEqual(Array(20).fill('b0'));
  });

  it('retries UNAVAILABLE answers on another endpoint, within the budget', async () => {
    const { backends, client } = await setup(2, { retries: { maxAttempts: 2, budgetPercent: 100 } });
    backends[0]?.state.update({ errorRate: 1, errorCode: 14 });
    expect(await servers(client, 10)).toEqual(Array(10).fill('b1'));
  });

  it('does not retry other codes unless the method is idempotent', async () => {
    const plain = await setup(2, {
      retries: { maxAttempts: 2, retryOn: ['unavailable', 'resource-exhausted'] },
    });
    plain.backends[0]?.state.update({ errorRate: 1, errorCode: 8 });
    const codes = await Promise.all(
      Array.from({ length: 10 }, () => echo(plain.client, {}).then((r) => r.status.code)),
    );
    expect(codes).toContain(grpc.status.RESOURCE_EXHAUSTED);

    const idem = await setup(2, {
      retries: { maxAttempts: 2, retryOn: ['unavailable', 'resource-exhausted'], budgetPercent: 100 },
      idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
    });
    idem.backends[0]?.state.update({ errorRate: 1, errorCode: 8 });
    expect(await servers(idem.client, 10)).toEqual(Array(10).fill('b1'));
  });

  it('answers UNAVAILABLE when no endpoint can take the call', async () => {
    const router = await startRouter([
      {
        name: 'gone',
        match: { services: ['sibyl.demo.v1.Demo'] },
        endpoints: [{ address: `127.0.0.1:${await freePort()}` }],
      },
    ]);
    cleanup.push(() => router.close());
    const client = demoClient(router.address);
    cleanup.push(() => client.close());
    for (let i = 0; i < 3; i++) {
      const r = await echo(client, {});
      expect(r.status.code).toBe(grpc.status.UNAVAILABLE);
    }
  });

  it('applies a new table atomically: new endpoints take calls, removed ones stop', async () => {
    const { backends, router, client } = await setup(1);
    const more = await startBackends(2, {}, 'new');
    cleanup.push(() => Promise.all(more.map((b) => b.stop(100))).then(() => undefined));
    const { tableFromConfig } = await import('../../../src/router/table.js');
    router.applyTable(
      tableFromConfig(
        { pools: [{ ...demoPool([more[0], more[1]] as Backend[]), name: 'demo' }] } as never,
        2,
      ),
    );
    const names = new Set(await servers(client, 10));
    expect(names.has(backends[0]?.name as string)).toBe(false);
    expect(names.size).toBe(2);
    expect(router.currentTable.version).toBe(2);
  });

  it('drains: calls in flight finish, then the listener is closed', async () => {
    const { router, client } = await setup(1);
    const slow = echo(client, { latencyMs: 300 });
    await waitFor(() => router.metrics.inflight.get().then((m) => m.values.some((v) => v.value > 0)), {
      what: 'the call to be in flight',
    });
    const drained = router.drain(5000);
    const r = await slow;
    expect(r.status.code).toBe(grpc.status.OK);
    await drained;
    const after = demoClient(router.address);
    const late = await echo(after, {}, { deadlineMs: 1000 });
    after.close();
    expect(late.status.code).not.toBe(grpc.status.OK);
  });
});

describe('message size limit', () => {
  it('answers RESOURCE_EXHAUSTED for a request message over the limit, and serves the next call', async () => {
    const backends = await startBackends(1);
    cleanup.push(() => backends[0]?.stop(100));
    const router = await startRouter([demoPool(backends)], { maxMessageBytes: 64 * 1024 });
    cleanup.push(() => router.close());
    const client = demoClient(router.address);
    cleanup.push(() => client.close());
    const big = await echo(client, { payload: Buffer.alloc(100_000) });
    expect(big.status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(big.status.details).toMatch(/exceeds the limit of 65536 bytes/);
    const ok = await echo(client, { payload: Buffer.alloc(60_000) });
    expect(ok.status.code).toBe(grpc.status.OK);
  });
});
