import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { startBackend, type Backend, type BackendOptions } from '../../src/tools/backend/server.js';
import { demoClientConstructor } from '../../src/tools/backend/proto.js';
import type {
  ClientStreamResponse,
  EchoRequest,
  EchoResponse,
  StreamRequest,
} from '../../src/tools/backend/messages.js';
import { validateRouterConfig } from '../../src/router/config.js';
import { Router, type RouterOptions } from '../../src/router/router.js';
import { tableFromConfig } from '../../src/router/table.js';
import { freePort } from '../../src/util/net.js';

/** Real grpc-js backends, the real router and real grpc-js clients on loopback, for integration tests. */

export const quiet = () => pino({ level: process.env.SIBYL_TEST_LOG ?? 'silent' });

export async function startBackends(n: number, opts: BackendOptions = {}, prefix = 'b'): Promise<Backend[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      startBackend({
        name: `${prefix}${i}`,
        settings: { latencyMs: 0, jitter: 0 },
        defaultMetrics: false,
        log: quiet(),
        ...opts,
      }),
    ),
  );
}

/**
 * Three backends b0..b2 on loopback addresses of their own (127.0.0.2–4), each serving its metrics on
 * the same port: what a pool's Prometheus scraping expects (one port, each pod at its own host).
 */
export async function startBackendsOnOwnHosts(
  opts: BackendOptions = {},
): Promise<{ backends: Backend[]; metricsPort: number }> {
  const metricsPort = await freePort();
  const backends = await Promise.all(
    [2, 3, 4].map(async (host, i) => {
      const [b] = await startBackends(1, {
        ...opts,
        name: `b${i}`,
        listen: `127.0.0.${host}:0`,
        metricsAddr: `127.0.0.${host}:${metricsPort}`,
      });
      return b as Backend;
    }),
  );
  return { backends, metricsPort };
}

/** A router in this process with one table made of `pools` (validated as a routes file would be). */
export async function startRouter(pools: unknown[], opts: RouterOptions = {}): Promise<Router> {
  const router = await Router.start({ defaultMetrics: false, log: quiet(), ...opts });
  router.applyTable(tableFromConfig(validateRouterConfig({ pools }, 'test')));
  return router;
}

export function demoPool(backends: Backend[], extra: Record<string, unknown> = {}) {
  return {
    name: 'demo',
    match: { services: ['sibyl.demo.v1.Demo'] },
    endpoints: backends.map((b) => ({ address: b.address })),
    balancing: { policy: 'RoundRobin' },
    ...extra,
  };
}

export type DemoClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function demoClient(address: string, options: grpc.ChannelOptions = {}): DemoClient {
  const C = demoClientConstructor();
  return new C(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    ...options,
  }) as unknown as DemoClient;
}

export interface CallResult<T> {
  error?: grpc.ServiceError;
  response?: T;
  headers?: grpc.Metadata;
  status: grpc.StatusObject;
}

export interface CallOpts {
  metadata?: grpc.Metadata;
  deadlineMs?: number;
}

function callOptions(o: CallOpts): grpc.CallOptions {
  return o.deadlineMs ? { deadline: Date.now() + o.deadlineMs } : {};
}

export function echo(
  client: DemoClient,
  req: EchoRequest,
  o: CallOpts = {},
): Promise<CallResult<EchoResponse>> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let result: { error?: grpc.ServiceError; response?: EchoResponse } | undefined;
    let status: grpc.StatusObject | undefined;
    const done = () => result && status && resolve({ ...result, headers, status });
    const call = (client.Echo as (...a: unknown[]) => grpc.ClientUnaryCall)(
      req,
      o.metadata ?? new grpc.Metadata(),
      callOptions(o),
      (error: grpc.ServiceError | null, response?: EchoResponse) => {
        result = { error: error ?? undefined, response };
        done();
      },
    );
    call.on('metadata', (m) => (headers = m));
    call.on('status', (s) => {
      status = s;
      done();
    });
  });
}

export function serverStream(
  client: DemoClient,
  req: StreamRequest,
  o: CallOpts = {},
): { call: grpc.ClientReadableStream<EchoResponse>; done: Promise<CallResult<EchoResponse[]>> } {
  const call = (client.ServerStream as (...a: unknown[]) => grpc.ClientReadableStream<EchoResponse>)(
    req,
    o.metadata ?? new grpc.Metadata(),
    callOptions(o),
  );
  const done = new Promise<CallResult<EchoResponse[]>>((resolve) => {
    const out: EchoResponse[] = [];
    let headers: grpc.Metadata | undefined;
    let error: grpc.ServiceError | undefined;
    call.on('metadata', (m) => (headers = m));
    call.on('data', (d: EchoResponse) => out.push(d));
    call.on('error', (e: grpc.ServiceError) => (error = e));
    call.on('status', (status) => resolve({ response: out, headers, status, error }));
  });
  return { call, done };
}

export function clientStream(
  client: DemoClient,
  reqs: EchoRequest[],
  o: CallOpts = {},
): Promise<CallResult<ClientStreamResponse>> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let result: { error?: grpc.ServiceError; response?: ClientStreamResponse } | undefined;
    let status: grpc.StatusObject | undefined;
    const done = () => result && status && resolve({ ...result, headers, status });
    const call = (client.ClientStream as (...a: unknown[]) => grpc.ClientWritableStream<EchoRequest>)(
      o.metadata ?? new grpc.Metadata(),
      callOptions(o),
      (error: grpc.ServiceError | null, response?: ClientStreamResponse) => {
        result = { error: error ?? undefined, response };
        done();
      },
    );
    call.on('metadata', (m) => (headers = m));
    call.on('status', (s) => {
      status = s;
      done();
    });
    for (const r of reqs) call.write(r);
    call.end();
  });
}

export function bidi(
  client: DemoClient,
  o: CallOpts = {},
): grpc.ClientDuplexStream<EchoRequest, EchoResponse> {
  return (client.BidiStream as (...a: unknown[]) => grpc.ClientDuplexStream<EchoRequest, EchoResponse>)(
    o.metadata ?? new grpc.Metadata(),
    callOptions(o),
  );
}

/** Echo calls the in-process backends have served, summed from their request counters. */
export async function echoCalls(backends: readonly Backend[]): Promise<number> {
  let n = 0;
  for (const b of backends) {
    for (const v of (await b.metrics.requests.get()).values) if (v.labels.method === 'Echo') n += v.value;
  }
  return n;
}
