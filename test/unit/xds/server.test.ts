import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { RouterAuthenticator } from '../../../src/control/auth.js';
import { ManualTimers } from '../../../src/util/timers.js';
import type { XdsNack } from '../../../src/xds/clients.js';
import { unpackAny } from '../../../src/xds/proto.js';
import { XdsServer, type XdsServerOptions } from '../../../src/xds/server.js';
import { SHORT, TYPE, type TypeUrl, type XdsPoolInput } from '../../../src/xds/types.js';
import { AdsStream } from '../../support/ads-stream.js';
import { waitFor } from '../../support/wait.js';

/** The ADS server on loopback, and real grpc-js bidi streams speaking to it as xDS clients would. */

const timers = new ManualTimers();
const nacks: XdsNack[] = [];
let server: grpc.Server;
let xds: XdsServer;
let address: string;
let serving = true;

async function start(o: Partial<XdsServerOptions> = {}) {
  xds = new XdsServer({
    allowUnauthenticated: true,
    clock: timers,
    timers,
    log: pino({ level: 'silent' }),
    pushIntervalMs: 1000,
    serving: () => serving,
    onNack: (n) => nacks.push(n),
    ...o,
  });
  server = new grpc.Server();
  xds.addToServer(server);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  address = `127.0.0.1:${port}`;
}

afterEach(() => {
  xds.close();
  server.forceShutdown();
  nacks.length = 0;
  serving = true;
});

function input(weights: number[], extra: Partial<XdsPoolInput> = {}): XdsPoolInput {
  const endpoints = weights.map((ms, i) => ({
    address: `10.0.0.${i + 1}:80`,
    ready: true,
    draining: false,
    predictedServiceMs: ms,
  }));
  return {
    key: 'shop/cart',
    match: { services: ['shop.Cart'], methods: [] },
    spec: resolvePoolSpec({
      endpoints: endpoints.map((e) => ({ address: e.address })),
    }),
    endpoints,
    ...extra,
  };
}

const goNode = { id: 'go-1', cluster: 'c', user_agent_name: 'gRPC Go' };
/** What the server has recorded of the (only) client for `type`: versions sent and ACKed. */
const recorded = (type: TypeUrl) => xds.clients()[0]?.types[SHORT[type]];

/** A server with the pool, and a grpc-go-like stream that asked for its `type` and ACKed the answer. */
async function subscribed(type: TypeUrl, o: Partial<XdsServerOptions> = {}): Promise<AdsStream> {
  await start(o);
  xds.setPool('shop/cart', input([10, 20]));
  const s = new AdsStream(address);
  s.send(type, ['cart.shop'], undefined, undefined, goNode);
  const first = await s.next(type);
  s.send(type, ['cart.shop'], first);
  await waitFor(() => recorded(type)?.acked === first.version_info, { what: 'the ACK recorded' });
  return s;
}

it('serves a proxyless client its pool by name, records ACKs per type and shows the pool as current', async () => {
  await start();
  xds.setPool('shop/cart', input([10, 20]));
  const s = new AdsStream(address);
  s.send(TYPE.listener, ['cart.shop'], undefined, undefined, goNode);
  const lds = await s.next(TYPE.listener);
  expect(lds.resources.map((r) => unpackAny(r).name)).toEqual(['cart.shop']);
  s.send(TYPE.listener, ['cart.shop'], lds);
  s.send(TYPE.cluster, ['cart.shop']);
  const cds = await s.next(TYPE.cluster);
  s.send(TYPE.cluster, ['cart.shop'], cds);
  s.send(TYPE.endpoint, ['cart.shop']);
  const eds = await s.next(TYPE.endpoint);
  s.send(TYPE.endpoint, ['cart.shop'], eds);
  await waitFor(() => xds.pool('shop/cart')?.clients[0]?.current, {
    timeoutMs: 5000,
    what: 'the client to be current',
  });
  const view = xds.pool('shop/cart');
  expect(view?.byKind).toEqual({ 'grpc-go': 1 });
  expect(Object.fromEntries(view?.weights ?? [])).toEqual({ '10.0.0.1:80': 100, '10.0.0.2:80': 50 });
  expect(xds.clients()[0]).toMatchObject({
    node: 'go-1',
    kind: 'grpc-go',
    types: { LDS: { sent: '1', acked: '1' }, CDS: { acked: '1' }, EDS: { acked: '1' } },
  });
  s.call.end();
});

it('pushes urgent changes at once and coalesces routine ones to one per push interval', async () => {
  const s = await subscribed(TYPE.endpoint);
  // Weights alone are routine: the first goes (no push yet this interval), the next two wait.
  xds.setPool('shop/cart', input([5, 20]));
  const second = await s.next(TYPE.endpoint, 2);
  xds.setPool('shop/cart', input([2.5, 20]));
  xds.setPool('shop/cart', input([1, 20]));
  // A push is written synchronously when it goes (PushScheduler.fire): the server's record shows none
  // after the second, with no wait needed to tell.
  expect(recorded(TYPE.endpoint)?.sent).toBe(second.version_info);
  expect(s.count(TYPE.endpoint)).toBe(2);
  timers.advance(1000);
  const coalesced = await s.next(TYPE.endpoint, 3);
  const weights = (
    unpackAny(coalesced.resources[0] as never).endpoints as {
      lb_endpoints: { load_balancing_weight: { value: number } }[];
    }[]
  )[0]?.lb_endpoints.map((e) => e.load_balancing_weight.value);
  expect(weights).toEqual([1000, 50]); // the latest figures
  // A breaker opening (DRAINING) is urgent: it goes at once, inside the interval.
  const draining = input([1, 20]);
  xds.setPool('shop/cart', {
    ...draining,
    endpoints: [{ ...draining.endpoints[0]!, draining: true }, draining.endpoints[1]!],
  });
  const urgent = await s.next(TYPE.endpoint, 4);
  expect(JSON.stringify(unpackAny(urgent.resources[0] as never))).toContain('DRAINING');
  s.call.end();
});

it('a NACK is reported with the detail and counted, leaves the client on its ACKed version and is not resent', async () => {
  const registry = new Registry();
  const s = await subscribed(TYPE.cluster, { registry });
  const budget = (budgetPercent: number) =>
    resolvePoolSpec({ endpoints: [{ address: 'a:1' }], retries: { budgetPercent } });
  xds.setPool('shop/cart', input([10, 20], { spec: budget(50) }));
  const second = await s.next(TYPE.cluster, 2);
  s.send(TYPE.cluster, ['cart.shop'], second, 'cluster cart.shop: no thanks');
  await waitFor(() => nacks.length === 1, { timeoutMs: 5000, what: 'the NACK' });
  expect(nacks[0]).toMatchObject({
    pool: 'shop/cart',
    client: { node: 'go-1', kind: 'grpc-go' },
    typeUrl: TYPE.cluster,
    version: second.version_info,
    detail: 'cluster cart.shop: no thanks',
  });
  expect(xds.clients()[0]?.types.CDS).toMatchObject({ acked: '1', sent: second.version_info });
  expect(xds.pool('shop/cart')?.clients[0]?.current).toBe(false);
  const metrics = await registry.metrics();
  expect(metrics).toContain('sibyl_xds_rejected_total{pool="shop/cart",kind="grpc-go",type="CDS"} 1');
  expect(metrics).toContain('sibyl_xds_clients{kind="grpc-go"} 1');
  timers.advance(5000); // the manual timers fire inside advance: any resend would be written by now
  expect(recorded(TYPE.cluster)?.sent).toBe(second.version_info);
  expect(s.count(TYPE.cluster)).toBe(2);
  xds.setPool('shop/cart', input([10, 20], { spec: budget(60) }));
  await s.next(TYPE.cluster, 3);
  s.call.end();
});

it('gives an Envoy its fleet listener on the address its bootstrap names, and every pool by wildcard', async () => {
  await start();
  xds.setPool('shop/cart', input([10]));
  xds.setPool('shop/pay', {
    ...input([10]),
    key: 'shop/pay',
    match: { services: ['shop.Pay'], methods: [] },
  });
  const s = new AdsStream(address);
  const node = {
    id: 'envoy-1',
    cluster: 'edge',
    user_agent_name: 'envoy',
    metadata: { fields: { 'sibyl.dev/listen': { stringValue: '127.0.0.1:8080' } } },
  };
  s.send(TYPE.cluster, [], undefined, undefined, node);
  s.send(TYPE.listener, []);
  const lds = await s.next(TYPE.listener);
  expect(lds.resources.map((r) => unpackAny(r))).toMatchObject([
    { name: 'sibyl-envoy.edge', address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } },
  ]);
  const cds = await s.next(TYPE.cluster);
  expect(cds.resources.map((r) => unpackAny(r).name).sort()).toEqual(['cart.shop', 'pay.shop']);
  expect(xds.clients()[0]).toMatchObject({
    kind: 'envoy',
    fleet: { name: 'edge', listen: '127.0.0.1:8080' },
  });
  s.call.end();
});

it('ignores a stale nonce', async () => {
  await start();
  xds.setPool('shop/cart', input([10]));
  const s = new AdsStream(address);
  s.send(TYPE.endpoint, ['cart.shop'], undefined, undefined, goNode);
  const first = await s.next(TYPE.endpoint);
  xds.setPool('shop/cart', input([10, 10]));
  await s.next(TYPE.endpoint, 2);
  s.send(TYPE.endpoint, ['cart.shop'], first); // acknowledges a response that was superseded
  // The server reads a stream in order: once it has answered a later request (a listener), it has
  // read the stale ACK.
  s.send(TYPE.listener, ['cart.shop']);
  await s.next(TYPE.listener);
  expect(xds.clients()[0]?.types.EDS).toEqual({ sent: '2' });
  s.call.end();
});

it('refuses a client without a node, and any client on a standby', async () => {
  await start();
  const s = new AdsStream(address);
  s.send(TYPE.listener, ['x']);
  await waitFor(() => s.error, { timeoutMs: 5000, what: 'the refusal' });
  expect(s.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  serving = false;
  const t = new AdsStream(address);
  t.send(TYPE.listener, ['x'], undefined, undefined, goNode);
  await waitFor(() => t.error, { timeoutMs: 5000, what: 'the refusal' });
  expect(t.error?.code).toBe(grpc.status.UNAVAILABLE);
});

it('authenticates with the control API authenticator: no token, an unlisted account, a listed one', async () => {
  const reviewer = async (token: string) =>
    token === 'good' || token === 'other'
      ? { authenticated: true, username: `system:serviceaccount:ns:${token === 'good' ? 'envoy' : 'else'}` }
      : { authenticated: false };
  await start({ allowUnauthenticated: false, auth: new RouterAuthenticator(reviewer, ['ns/envoy'], timers) });
  const withToken = (t?: string) => {
    const md = new grpc.Metadata();
    if (t) md.set('authorization', `Bearer ${t}`);
    const s = new AdsStream(address, md);
    s.send(TYPE.listener, [], undefined, undefined, goNode);
    return s;
  };
  const none = withToken();
  const other = withToken('other');
  const good = withToken('good');
  await waitFor(() => none.error && other.error, { timeoutMs: 5000, what: 'both refusals' });
  expect(none.error?.code).toBe(grpc.status.UNAUTHENTICATED);
  expect(other.error?.code).toBe(grpc.status.PERMISSION_DENIED);
  await good.next(TYPE.listener);
  expect(xds.clients().map((c) => c.account)).toEqual(['system:serviceaccount:ns:envoy']);
  good.call.end();
});
