import * as grpc from '@grpc/grpc-js';
import type { Backend } from '../../../src/tools/backend/server.js';
import type { Router } from '../../../src/router/router.js';
import {
  bidi,
  clientStream,
  demoClient,
  demoPool,
  echo,
  serverStream,
  startBackends,
  startRouter,
  type DemoClient,
} from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// Every kind of call, its metadata, trailers and status pass through the router unchanged.
let backends: Backend[];
let router: Router;
let client: DemoClient;

beforeAll(async () => {
  backends = await startBackends(2);
  router = await startRouter([demoPool(backends)], { metricsAddr: '127.0.0.1:0' });
  client = demoClient(router.address);
});

afterAll(async () => {
  client.close();
  await router.close();
  await Promise.all(backends.map((b) => b.stop(100)));
});

describe('the four kinds of call', () => {
  it('unary: request and response, response headers and trailers', async () => {
    const r = await echo(client, { message: 'hello', payload: Buffer.from('abc') });
    expect(r.error).toBeUndefined();
    expect(r.response).toMatchObject({ message: 'hello', payload: Buffer.from('abc') });
    expect(['b0', 'b1']).toContain(r.response?.server);
    expect(r.headers?.get('x-sibyl-backend')).toEqual([r.response?.server]);
    expect(r.status.code).toBe(grpc.status.OK);
    expect(r.status.metadata.get('x-sibyl-backend')).toEqual([r.response?.server]);
  });

  it('server streaming: every message in order', async () => {
    const { done } = serverStream(client, { count: 50, responseSize: 1000 });
    const r = await done;
    expect(r.status.code).toBe(0);
    expect(r.response?.map((m) => m.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(r.response?.every((m) => m.payload.length === 1000)).toBe(true);
  });

  it('client streaming: every message arrives', async () => {
    const reqs = Array.from({ length: 30 }, (_, i) => ({ message: `m${i}`, payload: Buffer.alloc(100) }));
    const r = await clientStream(client, reqs);
    expect(r.error).toBeUndefined();
    expect(r.response).toMatchObject({ count: 30, totalBytes: 3000 });
    expect(r.response?.messages.split(',')).toEqual(reqs.map((q) => q.message));
  });

  it('bidirectional streaming: each request answered in turn', async () => {
    const call = bidi(client);
    const got: string[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('data', (m: { message: string }) => {
      got.push(m.message);
      if (got.length < 20) call.write({ message: `ping ${got.length}` });
      else call.end();
    });
    call.write({ message: 'ping 0' });
    expect((await status).code).toBe(0);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `ping ${i}`));
  });
});

describe('metadata and status', () => {
  it('passes request metadata, binary metadata included, to the backend', async () => {
    const md = new grpc.Metadata();
    md.set('x-user', 'ann');
    md.add('x-multi', 'one');
    md.set('x-blob-bin', Buffer.from([0, 1, 2, 255]));
    const r = await echo(client, {}, { metadata: md });
    expect(r.response?.requestMetadata).toMatchObject({
      'x-user': 'ann',
      'x-multi': 'one',
      'x-blob-bin': Buffer.from([0, 1, 2, 255]).toString('base64'),
    });
  });

  it('passes response headers and trailers back', async () => {
    const r = await echo(client, { echoMetadata: { 'x-one': '1', 'x-two': 'zwei' } });
    expect(r.headers?.get('x-one')).toEqual(['1']);
    expect(r.headers?.get('x-two')).toEqual(['zwei']);
    expect(r.status.metadata.get('x-one-trailer')).toEqual(['1']);
    expect(r.status.metadata.get('x-two-trailer')).toEqual(['zwei']);
  });

  it.each(Array.from({ length: 16 }, (_, i) => i + 1))(
    'status %i and its message round-trip',
    async (code) => {
      const message = `failed with ${code}: 100% ünïcødé ✓\nsecond line`;
      const r = await echo(client, {
        failWithCode: code,
        failMessage: message,
        echoMetadata: { 'x-k': 'v' },
      });
      expect(r.error?.code).toBe(code);
      expect(r.error?.details).toBe(message);
      expect(r.status.metadata.get('x-k-trailer')).toEqual(['v']);
      expect(r.status.metadata.get('x-sibyl-backend')).toHaveLength(1);
    },
  );

  it('a status after some stream messages arrives as trailers', async () => {
    const { done } = serverStream(client, { count: 10, failAfter: 4, failWithCode: 9, failMessage: 'stop' });
    const r = await done;
    expect(r.response).toHaveLength(4);
    expect(r.status).toMatchObject({ code: 9, details: 'stop' });
  });
});

describe('sizes and encodings', () => {
  it('carries an 8 MiB message each way', async () => {
    const payload = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = i % 251;
    const r = await echo(client, { payload });
    expect(r.error).toBeUndefined();
    expect(r.response?.payload.equals(payload)).toBe(true);
  });

  it('carries compressed calls (grpc-encoding passed through)', async () => {
    const gz = demoClient(router.address, { 'grpc.default_compression_algorithm': 2 });
    try {
      const payload = Buffer.alloc(100_000, 'abc');
      const r = await echo(gz, { payload, message: 'zipped' });
      expect(r.error).toBeUndefined();
      expect(r.response?.payload.equals(payload)).toBe(true);
      const s = await clientStream(gz, [{ payload }, { payload }]);
      expect(s.response?.totalBytes).toBe(200_000);
    } finally {
      gz.close();
    }
  });
});

describe('router-made statuses', () => {
  it('answers UNIMPLEMENTED when no pool matches the service', async () => {
    const raw = new grpc.Client(router.address, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      raw.makeUnaryRequest(
        '/shop.Cart/Add',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(3),
        (e) => resolve(e as grpc.ServiceError),
      ),
    );
    raw.close();
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(err.details).toContain('no pool matches the service shop.Cart');
  });

  it('answers DEADLINE_EXCEEDED when the backend is slower than the deadline; the backend drops the call', async () => {
    const cancelled = async () => {
      let n = 0;
      for (const b of backends)
        for (const v of (await b.metrics.requests.get()).values)
          if (v.labels.method === 'Echo' && v.labels.code === '1') n += v.value;
      return n;
    };
    const before = await cancelled();
    const r = await echo(client, { latencyMs: 60_000 }, { deadlineMs: 300 });
    expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The end of the call reaches the backend through the router: it drops the call (counted as
    // cancelled, its slot free) long before its 60 s of service time would have passed.
    await waitFor(
      async () => (await cancelled()) > before && backends.every((b) => b.state.slots.busy === 0),
      { what: 'the backend to drop the call', timeoutMs: 20_000 },
    );
  });
});

describe('cancellation', () => {
  it('a client cancel reaches the backend, which stops the stream', async () => {
    const before = await cancelledCount();
    const { call, done } = serverStream(client, { count: 100_000, sleepMs: 5 });
    let n = 0;
    call.on('data', () => {
      if (++n === 3) call.cancel();
    });
    const r = await done;
    expect(r.status.code).toBe(grpc.status.CANCELLED);
    await waitFor(async () => (await cancelledCount()) > before, { what: 'the backend to see the cancel' });
  });
});

describe('/metrics', () => {
  it('counts calls by pool and code', async () => {
    const text = await (await fetch(`http://${router.metricsAddress}/metrics`)).text();
    expect(text).toMatch(/sibyl_router_requests_total\{pool="demo",code="0"\} [1-9]/);
    expect(text).toMatch(/sibyl_router_requests_total\{pool="none",code="12"\} 1/);
    expect(text).toContain('sibyl_router_request_duration_seconds_bucket');
    expect(text).toMatch(/sibyl_router_upstream_sessions\{pool="demo",endpoint="127.0.0.1:\d+"\} 1/);
    expect((await fetch(`http://${router.metricsAddress}/readyz`)).status).toBe(200);
  });
});

async function cancelledCount(): Promise<number> {
  let n = 0;
  for (const b of backends) {
    const m = await b.metrics.requests.get();
    n += m.values.filter((v) => v.labels.code === '1').reduce((s, v) => s + v.value, 0);
  }
  return n;
}
