import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../../src/tools/backend/server.js';
import type { Router } from '../../../src/router/router.js';
import { killRedis, startRedis } from '../../support/redis.js';
import {
  demoClient,
  demoPool,
  echo,
  echoCalls,
  startBackends,
  startRouter,
  type DemoClient,
} from '../../support/grpc.js';
import { freePort, waitFor } from '../../support/wait.js';

// The router's cache end to end: real backends, real router, the shared test Redis (or one of our own),
// real disk. A backend's request counter says whether a call reached it.
const ECHO = '/sibyl.demo.v1.Demo/Echo';
const REDIS = process.env.SIBYL_TEST_REDIS_URL as string;

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const backendCalls = echoCalls;

async function router(backends: Backend[], cache: Record<string, unknown>): Promise<Router> {
  const r = await startRouter([demoPool(backends, { cache })]);
  cleanup.push(() => r.close());
  const l2 = r.poolCache('demo')?.l2;
  if (l2) await l2.ready();
  return r;
}

function client(r: Router): DemoClient {
  const c = demoClient(r.address);
  cleanup.push(() => c.close());
  return c;
}

async function setup(n = 1) {
  const backends = await startBackends(n);
  cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))).then(() => undefined));
  return backends;
}

const tier = (r: Router, t: string) =>
  r
    .poolCache('demo')
    ?.tierCounters()
    .find((c) => c.tier === t);
/** A request no other test sends (they share one Redis). */
const fresh = () => ({ message: randomUUID(), responseSize: 64 });

describe('router cache', () => {
  it('a hit in L1 is served without a backend: same headers, body and trailers as the original', async () => {
    const backends = await setup();
    const r = await router(backends, { methods: [{ method: ECHO, ttl: '60s' }] });
    const c = client(r);
    const req = fresh();
    const md = new grpc.Metadata();
    const a = await echo(c, req, { metadata: md });
    const b = await echo(c, req);
    expect(a.error).toBeUndefined();
    expect(b.error).toBeUndefined();
    expect(await backendCalls(backends)).toBe(1);
    expect(b.response).toEqual(a.response); // servedMicros too: the very bytes of the first answer
    expect(b.headers?.getMap()).toEqual(a.headers?.getMap());
    expect(b.status.metadata.getMap()).toEqual(a.status.metadata.getMap());
    expect(tier(r, 'l1')).toMatchObject({ hits: 1, misses: 1, fills: 1, entries: 1 });
    // Another request is another key.
    await echo(c, fresh());
    expect(await backendCalls(backends)).toBe(2);
    const text = await r.metrics.registry.metrics();
    expect(text).toMatch(/sibyl_cache_requests_total\{pool="demo",tier="l1",result="hit"\} 1/);
  });

  it('errors are not stored; bypass neither reads nor writes; refresh skips reads and writes the answer', async () => {
    const backends = await setup();
    const r = await router(backends, { methods: [{ method: ECHO }] });
    const c = client(r);
    const failing = { ...fresh(), failWithCode: grpc.status.NOT_FOUND };
    expect((await echo(c, failing)).status.code).toBe(grpc.status.NOT_FOUND);
    expect((await echo(c, failing)).status.code).toBe(grpc.status.NOT_FOUND);
    expect(await backendCalls(backends)).toBe(2);

    const req = fresh();
    const bypass = new grpc.Metadata();
    bypass.set('x-sibyl-cache', 'bypass');
    await echo(c, req, { metadata: bypass });
    expect(tier(r, 'l1')?.fills).toBe(0); // nothing written
    const first = await echo(c, req); // miss, fill
    await echo(c, req, { metadata: bypass }); // not read: goes to the backend
    expect(await backendCalls(backends)).toBe(5);
    const refresh = new grpc.Metadata();
    refresh.set('x-sibyl-cache', 'refresh');
    const refreshed = await echo(c, req, { metadata: refresh });
    expect(await backendCalls(backends)).toBe(6);
    expect(refreshed.response?.servedMicros).not.toBeUndefined();
    const after = await echo(c, req);
    expect(await backendCalls(backends)).toBe(6);
    // The refreshed answer replaced the first one.
    expect(after.response).toEqual(refreshed.response);
    expect(first.response?.message).toBe(after.response?.message);
  });

  it('entries expire after their TTL', async () => {
    const backends = await setup();
    const r = await router(backends, { methods: [{ method: ECHO, ttl: '1s' }] });
    const c = client(r);
    const req = fresh();
    const t0 = performance.now();
    await echo(c, req);
    await echo(c, req);
    expect(await backendCalls(backends)).toBe(1);
    // The router's cache runs on its own clock: ask until a call reaches the backend. Every call before
    // that was a hit.
    await waitFor(
      async () => {
        await echo(c, req);
        return (await backendCalls(backends)) > 1;
      },
      { what: 'the entry to expire', timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1000); // not before its TTL
    expect(await backendCalls(backends)).toBe(2);
  });

  it('L1 miss → L2 hit → L1 filled (a second router sharing Redis)', async () => {
    const backends = await setup();
    const cache = {
      methods: [{ method: ECHO, ttl: '60s' }],
      l2: { redis: { url: REDIS }, timeout: '200ms' },
    };
    const a = await router(backends, cache);
    const b = await router(backends, cache);
    const req = fresh();
    const first = await echo(client(a), req);
    await waitFor(() => tier(a, 'l2')?.fills === 1, { what: 'L2 fill' });
    const cb = client(b);
    const viaL2 = await echo(cb, req);
    expect(viaL2.response).toEqual(first.response);
    expect(tier(b, 'l1')).toMatchObject({ misses: 1, hits: 0 });
    expect(tier(b, 'l2')).toMatchObject({ hits: 1 });
    await waitFor(() => tier(b, 'l1')?.fills === 1, { what: 'promotion into L1' });
    const viaL1 = await echo(cb, req);
    expect(viaL1.response).toEqual(first.response);
    expect(tier(b, 'l1')?.hits).toBe(1);
    expect(tier(b, 'l2')?.hits).toBe(1);
    expect(await backendCalls(backends)).toBe(1);
  });

  it('100 concurrent identical calls make one backend call', async () => {
    const backends = await startBackends(2, { settings: { latencyMs: 200, jitter: 0 } });
    cleanup.push(() => Promise.all(backends.map((b) => b.stop(100))).then(() => undefined));
    const r = await router(backends, { methods: [{ method: ECHO }] });
    const c = client(r);
    const req = fresh();
    const all = await Promise.all(Array.from({ length: 100 }, () => echo(c, req)));
    expect(all.filter((x) => x.error)).toEqual([]);
    expect(await backendCalls(backends)).toBe(1);
    const body = all[0]?.response;
    for (const x of all) expect(x.response).toEqual(body);
    // Errors are shared too, and not stored.
    const failing = { ...fresh(), failWithCode: grpc.status.FAILED_PRECONDITION };
    const errs = await Promise.all(Array.from({ length: 20 }, () => echo(c, failing)));
    expect(errs.map((x) => x.status.code)).toEqual(Array(20).fill(grpc.status.FAILED_PRECONDITION));
    expect(await backendCalls(backends)).toBe(2);
    await echo(c, failing);
    expect(await backendCalls(backends)).toBe(3);
  });

  it('Redis killed mid-load: no call fails, and L2 is used again once Redis is back', async () => {
    const port = await freePort();
    let redis = await startRedis(port);
    cleanup.push(() => killRedis(redis));
    const backends = await setup(2);
    const url = `redis://127.0.0.1:${port}`;
    const cache = {
      methods: [{ method: ECHO, ttl: '60s' }],
      l1: { ttl: '1s' },
      l2: { redis: { url }, timeout: '50ms' },
    };
    const r = await router(backends, cache);
    const c = client(r);
    const keys = Array.from({ length: 20 }, fresh);
    let failed = 0;
    let calls = 0;
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const batch = await Promise.all(
          keys.slice(0, 10).map((k) => echo(c, { ...k, message: `${k.message}-${i % 50}` })),
        );
        calls += batch.length;
        failed += batch.filter((x) => x.error).length;
      }
    })();
    await waitFor(() => (tier(r, 'l2')?.fills ?? 0) > 20, { what: 'L2 in use' });
    const errorsBefore = tier(r, 'l2')?.errors ?? 0;
    await killRedis(redis);
    // L2 fails under the load, and its breaker opens.
    await waitFor(
      () => (tier(r, 'l2')?.errors ?? 0) > errorsBefore && r.poolCache('demo')?.l2?.breakerState !== 'Closed',
      { what: "L2's errors and its breaker open", intervalMs: 20 },
    );
    redis = await startRedis(port);
    const fillsBefore = tier(r, 'l2')?.fills ?? 0;
    await waitFor(() => (tier(r, 'l2')?.fills ?? 0) > fillsBefore + 5, {
      what: 'L2 filled again',
      timeoutMs: 15_000,
    });
    stop = true;
    await load;
    expect(calls).toBeGreaterThan(100);
    expect(failed).toBe(0);
    // An entry written after the restart is read back from L2 once L1 lets it go (l1.ttl 1s): ask until
    // a call is an L2 hit (the load has stopped, so the hit is this call's), and it must answer with the
    // first answer's very bytes, never a second backend call's.
    const req = fresh();
    const fills = tier(r, 'l2')?.fills ?? 0;
    const first = await echo(c, req);
    await waitFor(() => (tier(r, 'l2')?.fills ?? 0) > fills, { what: 'the entry written to L2' });
    const readBack = await waitFor(
      async () => {
        const hits = tier(r, 'l2')?.hits ?? 0;
        const x = await echo(c, req);
        return (tier(r, 'l2')?.hits ?? 0) > hits && x;
      },
      { what: 'an L2 hit for the entry once L1 let it go', timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(readBack.response).toEqual(first.response);
  });

  it('the disk tier survives a router restart, and a corrupted file is skipped and deleted', async () => {
    const backends = await setup();
    const path = mkdtempSync(join(tmpdir(), 'sibyl-l3-'));
    const cache = { methods: [{ method: ECHO, ttl: '60s' }], l3: { path, maxBytes: '1Mi' } };
    const reqs = [fresh(), fresh(), fresh()];
    const r1 = await router(backends, cache);
    const c1 = client(r1);
    const answers: Array<Awaited<ReturnType<typeof echo>>> = [];
    for (const q of reqs) answers.push(await echo(c1, q));
    await waitFor(() => tier(r1, 'l3')?.fills === 3, { what: 'L3 fills' });
    const dir = r1.poolCache('demo')?.l3?.dir as string;
    // The pool's own folder under the tier's path.
    expect(dir).toBe(join(path, 'demo'));
    await r1.close();
    expect(readdirSync(dir)).toHaveLength(3);

    // Corrupt one file (one byte of its body flipped) before the next router starts.
    const files = readdirSync(dir);
    const victim = join(dir, files[0] as string);
    const bytes = readFileSync(victim);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(victim, bytes);

    const r2 = await router(backends, cache);
    const c2 = client(r2);
    await r2.poolCache('demo')?.l3?.ready;
    expect(tier(r2, 'l3')?.entries).toBe(3);
    const again = [];
    for (const q of reqs) again.push(await echo(c2, q));
    expect(again.map((x) => x.error)).toEqual([undefined, undefined, undefined]);
    expect(tier(r2, 'l3')?.hits).toBe(2);
    expect(r2.poolCache('demo')?.l3?.corrupted).toBe(1);
    expect(await backendCalls(backends)).toBe(4);
    // The two good ones are the answers from before the restart, byte for byte (the refetched third
    // differs only in the backend's servedMicros, which may by chance be the same figure).
    const same = again.filter((x, i) => JSON.stringify(x.response) === JSON.stringify(answers[i]?.response));
    expect(same.length).toBeGreaterThanOrEqual(2);
  });
});
