import type { Backend } from '../../../src/tools/backend/server.js';
import type { XdsNack } from '../../../src/xds/clients.js';
import { TYPE, type XdsPoolInput } from '../../../src/xds/types.js';
import { startBackends } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';
import {
  EVERY_POLICY,
  goClient,
  poolInput,
  type Ads,
  type GoXdsClient,
  startAds,
  zeroWeightsWhile,
} from '../../support/xds.js';

/**
 * grpc-go, the strictest xDS client, against sibyl's ADS: the project's own client
 * (sibyl-xds-client) dials xds:///demo.xds-go and calls the demo backends.
 */

const KEY = 'xds-go/demo';
let backends: Backend[];
let ads: Ads;
const nacks: XdsNack[] = [];
/** When set, every endpoint weight in EDS becomes 0, which grpc-go refuses. */
let zeroWeights = false;
const clients: GoXdsClient[] = [];

const zero = zeroWeightsWhile(() => zeroWeights);

function client(name: string): GoXdsClient {
  const c = goClient(name, 'demo.xds-go', ads.address);
  clients.push(c);
  return c;
}

const share = (b: Record<string, number>, name: string) =>
  (b[name] ?? 0) / Object.values(b).reduce((a, n) => a + n, 0);

beforeAll(async () => {
  backends = await startBackends(3);
  ads = await startAds({ onNack: (n) => nacks.push(n), mutate: zero });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await ads.stop();
  await Promise.all(backends.map((b) => b.stop()));
});

it('grpc-go accepts every resource (it ACKs LDS, CDS and EDS) and its calls reach the backends', async () => {
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  const c = client('go-basic');
  const r = await c.batch(90);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1', 'b2']);
  const view = ads.xds.pool(KEY);
  expect(view?.byKind).toEqual({ 'grpc-go': 1 });
  await waitFor(() => ads.xds.pool(KEY)?.clients[0]?.current, { what: 'grpc-go to ACK the pool' });
  expect(ads.xds.clients()[0]?.types).toMatchObject({
    LDS: { acked: '1' },
    CDS: { acked: '1' },
    EDS: { acked: '1' },
  });
});

it('traffic follows the weights: well below capacity, ring_hash picks by endpoint weight', async () => {
  // b0 is predicted three times as fast as b1 and b2: weights 100, 33, 33 (calls/s).
  const input = poolInput(KEY, backends, {}, (_b, i) => ({ predictedServiceMs: i === 0 ? 10 : 30 }));
  ads.xds.setPool(KEY, { ...input, offeredCallsPerSec: 5 });
  expect(ads.xds.pool(KEY)?.stockPolicy).toBe('ring_hash');
  expect(Object.fromEntries(ads.xds.pool(KEY)?.weights ?? [])).toEqual({
    [backends[0]!.address]: 100,
    [backends[1]!.address]: 33,
    [backends[2]!.address]: 33,
  });
  const c = client('go-weights');
  await waitFor(
    async () => (await c.batch(20)).errors && ads.xds.pool(KEY)?.clients.every((x) => x.current),
    {
      what: 'the client on the weighted cluster',
    },
  );
  const r = await c.batch(600, { concurrency: 4 });
  expect(r.errors).toEqual({});
  const b0 = share(r.backends, 'b0');
  console.log(`ring_hash, weights 100:33:33 (expected share 0.60): b0 got ${b0.toFixed(3)} of 600 calls`);
  expect(b0).toBeGreaterThan(0.45);
  expect(b0).toBeLessThan(0.8);
});

it('DRAINING is honoured within a second of the client taking it (its ACK)', async () => {
  const input = poolInput(KEY, backends);
  ads.xds.setPool(KEY, input);
  const c = client('go-drain');
  await c.batch(30);
  c.trace(200);
  await waitFor(() => c.traced.filter((t) => t.backend === 'b1').length > 20, { what: 'calls to b1' });
  const opened = Date.now();
  ads.xds.setPool(KEY, { ...input, endpoints: input.endpoints.map((e, i) => ({ ...e, draining: i === 1 })) });
  await waitFor(() => ads.xds.pool(KEY)?.clients.find((x) => x.node === 'go-drain')?.current, {
    intervalMs: 5,
    what: 'the client to ACK the DRAINING endpoint',
  });
  // How soon the client has it is a figure (a loaded machine stretches it); from its ACK on, the
  // endpoint must be left within a second (a client ACKs a config it has taken).
  const ackedAt = Date.now();
  await waitFor(() => c.traced.some((t) => t.at > ackedAt + 2000), {
    what: 'two seconds of calls after the ACK',
  });
  await c.stopTrace();
  const after = c.traced.filter((t) => t.at > opened);
  const lastOnB1 = Math.max(opened, ...after.filter((t) => t.backend === 'b1').map((t) => t.at));
  console.log(
    `grpc-go ACKed DRAINING ${ackedAt - opened} ms after the breaker opened; its last call on b1 ended ${lastOnB1 - opened} ms after (calls every 5 ms)`,
  );
  expect(after.filter((t) => t.at > ackedAt + 1000 && t.backend === 'b1')).toEqual([]);
  expect(after.filter((t) => t.code !== 0)).toEqual([]);
  expect(new Set(after.filter((t) => t.at > ackedAt + 1000).map((t) => t.backend))).toEqual(
    new Set(['b0', 'b2']),
  );
});

it('every policy a spec sets passes grpc-go; its retries (gRFC A44) take UNAVAILABLE elsewhere', async () => {
  ads.xds.setPool(
    KEY,
    poolInput(KEY, backends, { ...EVERY_POLICY, circuitBreaker: { failureThreshold: 3 } }),
  );
  const c = client('go-policies');
  await waitFor(
    async () => (await c.batch(10)).errors && ads.xds.pool(KEY)?.clients.every((x) => x.current),
    {
      what: 'grpc-go to ACK the full spec',
    },
  );
  expect(nacks).toEqual([]);
  backends[1]!.state.update({ errorRate: 1 });
  try {
    const r = await c.batch(150, { concurrency: 2 });
    const failed = Object.values(r.errors).reduce((a, n) => a + n, 0);
    console.log(
      `grpc-go with b1 failing, 3 attempts: ${JSON.stringify(r.backends)}, ${failed} of 150 failed`,
    );
    // Without retries a third would fail on b1; with three attempts about (1/3)^3 may.
    expect(failed).toBeLessThan(15);
  } finally {
    backends[1]!.state.update({ errorRate: 0 });
  }
});

it('a resource grpc-go refuses is reported with its detail and the client keeps its last good configuration', async () => {
  const two: XdsPoolInput = { ...poolInput(KEY, backends.slice(0, 2)) };
  ads.xds.setPool(KEY, two);
  const c = client('go-nack');
  await waitFor(async () => Object.keys((await c.batch(40)).backends).length === 2, {
    what: 'calls on b0 and b1',
  });
  zeroWeights = true;
  ads.xds.setPool(KEY, poolInput(KEY, backends)); // adds b2, in an EDS grpc-go refuses (weight 0)
  const nack = await waitFor(() => nacks.find((n) => n.client.node === 'go-nack'), { what: 'the NACK' });
  console.log(`grpc-go refused: ${nack.detail}`);
  expect(nack).toMatchObject({ pool: KEY, typeUrl: TYPE.endpoint, client: { kind: 'grpc-go' } });
  expect(nack.detail).toMatch(/weight/i);
  const info = ads.xds.clients().find((x) => x.node === 'go-nack');
  expect(info?.types.EDS?.nack?.version).toBe(info?.types.EDS?.sent);
  expect(info?.types.EDS?.acked).not.toBe(info?.types.EDS?.sent);
  // Its last good configuration: b0 and b1 only, never the b2 of the refused update.
  const r = await c.batch(60);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1']);
  zeroWeights = false;
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  await waitFor(async () => (await c.batch(30)).backends.b2, {
    what: 'the fixed update to reach the client',
  });
});

it('with the ADS server stopped, grpc-go keeps routing on its last configuration', async () => {
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  const c = client('go-static');
  await waitFor(async () => Object.keys((await c.batch(30)).backends).length === 3, {
    what: 'calls on every backend',
  });
  await ads.stop();
  const r = await c.batch(90);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1', 'b2']);
});
