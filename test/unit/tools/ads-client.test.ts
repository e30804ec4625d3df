import { AdsClient, type EdsArrival } from '../../../src/tools/bench/ads-client.js';
import { poolInput, startAds, type Ads } from '../../../src/tools/bench/ads.js';
import type { Msg } from '../../../src/xds/routes.js';
import { SHORT, TYPE, type TypeUrl } from '../../../src/xds/types.js';
import { waitFor } from '../../support/wait.js';

/**
 * The simulated ADS client of `sibyl bench scale` against sibyl's real XdsServer on loopback: it
 * follows LDS → CDS → EDS, acknowledges every response, and sees an endpoint change from the
 * ClusterLoadAssignment's content.
 */

let ads: Ads;
let client: AdsClient | undefined;
// distinct IPs: names under .localhost all go to data planes as 127.0.0.1 (src/xds/endpoints.ts)
const addresses = (pool: string) => [0, 1, 2].map((i) => `10.0.${pool.slice(1)}.${i + 1}:50051`);
const node = { id: 'bench-0', cluster: 'bench', user_agent_name: 'gRPC sibyl-bench' };

afterEach(async () => {
  client?.close();
  client = undefined;
  await ads?.stop();
});

/** The server's view of the one client: per type, the versions sent and acknowledged. */
const types = () => ads.xds.clients()[0]?.types ?? {};
const synced = () =>
  ['LDS', 'CDS', 'EDS'].every(
    (t) => types()[t]?.sent !== undefined && types()[t]?.sent === types()[t]?.acked,
  );

it('subscribes LDS, then CDS and EDS for what the listeners name, ACKs each, and sees a change', async () => {
  ads = await startAds({ pushIntervalMs: 1000 });
  for (const p of ['p0', 'p1', 'p2']) ads.xds.setPool(`bench/${p}`, poolInput(`bench/${p}`, addresses(p)));
  const seen: EdsArrival[] = [];
  client = new AdsClient(ads.address, node, ['p0.bench', 'p1.bench'], (a) => seen.push(a));
  await waitFor(() => client?.usable('p0.bench') === 3 && client.usable('p1.bench') === 3 && synced(), {
    what: 'both subscribed clusters with 3 usable endpoints, every type acknowledged',
  });
  expect(ads.xds.clients()[0]?.kind).toBe('grpc');
  // Only what it dials: p2 is never asked for.
  expect(client.usable('p2.bench')).toBeUndefined();
  expect(seen.map((a) => a.cluster)).not.toContain('p2.bench');
  expect(client.acks[TYPE.endpoint]).toBeGreaterThanOrEqual(1);
  expect(client.nacks).toBe(0);

  // e1 of p1 is no longer ready: urgent, so pushed at once; the client sees 2 usable endpoints.
  const before = types().EDS?.acked;
  const t0 = performance.now();
  ads.xds.setPool(
    'bench/p1',
    poolInput('bench/p1', addresses('p1'), {}, (_, i) => ({ ready: i !== 1 })),
  );
  const arrival = await waitFor(() => seen.find((a) => a.cluster === 'p1.bench' && a.usable === 2), {
    what: 'the assignment with e1 not ready',
  });
  expect(arrival.atMs).toBeGreaterThanOrEqual(t0);
  await waitFor(() => synced() && types().EDS?.acked !== before, {
    what: 'the new EDS version acknowledged',
  });
  expect(client.usable('p0.bench')).toBe(3);
  expect(client.error).toBeUndefined();
});

it('refuses a cluster it cannot use (not EDS) with error_detail, and the server records the NACK', async () => {
  const staticCluster = (type: TypeUrl, r: Msg): Msg =>
    type === TYPE.cluster ? { ...r, type: 'STATIC' } : r;
  ads = await startAds({ mutate: staticCluster });
  ads.xds.setPool('bench/p0', poolInput('bench/p0', addresses('p0')));
  client = new AdsClient(ads.address, node, ['p0.bench']);
  const nack = await waitFor(() => types()[SHORT[TYPE.cluster]]?.nack, { what: 'the CDS refusal' });
  expect(nack.detail).toMatch(/p0\.bench: type STATIC, not EDS/);
  expect(client.nacks).toBeGreaterThanOrEqual(1);
  expect(client.usable('p0.bench')).toBeUndefined();
});
