import * as grpcXds from '@grpc/grpc-js-xds';
import type { Backend } from '../../../src/tools/backend/server.js';
import { renderBootstrap } from '../../../src/xds/bootstrap.js';
import { demoClient, echo, startBackends, type DemoClient } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';
import { poolInput, startAds, type Ads } from '../../support/xds.js';

/**
 * @grpc/grpc-js-xds (a proxyless Node client) through sibyl's ADS. It has no least_request, so in
 * the cluster's policy list [sibyl.PredictiveLb, least_request, round_robin] it must skip both of the
 * first (it registered no sibyl.PredictiveLb) and run round_robin.
 */

const KEY = 'xds-js/demo';
let backends: Backend[];
let ads: Ads;
let client: DemoClient;

beforeAll(async () => {
  backends = await startBackends(3);
  ads = await startAds();
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  // grpc-js-xds reads its bootstrap once, when the first xds: channel starts.
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = renderBootstrap('grpc', {
    server: ads.address,
    insecure: true,
    nodeId: 'node-js',
  });
  grpcXds.register();
  client = demoClient('xds:///demo.xds-js');
});

afterAll(async () => {
  client?.close();
  await ads?.stop();
  await Promise.all(backends.map((b) => b.stop()));
});

it('dials xds:///NAME.NAMESPACE, ACKs every resource and routes round robin (it skips least_request)', async () => {
  const first = await echo(client, {}, { deadlineMs: 10_000 });
  expect(first.error).toBeUndefined();
  await waitFor(() => ads.xds.pool(KEY)?.clients[0]?.current, { what: 'grpc-js-xds to ACK the pool' });
  expect(ads.xds.pool(KEY)?.byKind).toEqual({ 'grpc-js': 1 });
  expect(ads.xds.pool(KEY)?.stockPolicy).toBe('least_request');
  const order: string[] = [];
  for (let i = 0; i < 30; i++) {
    const r = await echo(client, {}, { deadlineMs: 5000 });
    expect(r.error).toBeUndefined();
    order.push(String(r.headers?.get('x-sibyl-backend')[0]));
  }
  // round_robin: every run of three sequential calls visits the three backends.
  for (let i = 0; i + 3 <= order.length; i++) expect(new Set(order.slice(i, i + 3)).size).toBe(3);
});

it('follows DRAINING: the endpoint of an open breaker takes no new calls', async () => {
  const input = poolInput(KEY, backends);
  ads.xds.setPool(KEY, { ...input, endpoints: input.endpoints.map((e, i) => ({ ...e, draining: i === 2 })) });
  await waitFor(() => ads.xds.pool(KEY)?.clients[0]?.current, { what: 'grpc-js-xds to ACK DRAINING' });
  const seen = new Set<string>();
  await waitFor(
    async () => {
      seen.clear();
      for (let i = 0; i < 20; i++)
        seen.add(String((await echo(client, {})).headers?.get('x-sibyl-backend')[0]));
      return !seen.has('b2');
    },
    { what: 'calls to leave b2' },
  );
  expect([...seen].sort()).toEqual(['b0', 'b1']);
});
