import * as k8s from '@kubernetes/client-node';
import type { Operator } from '../../../src/operator/operator.js';
import { createNamespace, kubeConfig, kubectl, kubectlOk } from '../../support/kube.js';
import { createPool, listEvents } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { freePort, waitFor } from '../../support/wait.js';

/**
 * A CacheTier whose Redis does not answer (a port nothing listens on): RedisReachable=False naming the
 * error, and its deletion retries the cleanup, then gives up after the bounded time and lets it go.
 */
let ns: string;
let op: Operator;

interface TierView {
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}
const ref = (name: string) => ({
  group: 'sibyl.dev',
  version: 'v1alpha1',
  namespace: ns,
  plural: 'cachetiers',
  name,
});
const custom = () => kubeConfig().makeApiClient(k8s.CustomObjectsApi);

beforeAll(async () => {
  ns = await createNamespace('ct-down');
  await createPool(ns, 'api', { endpoints: [{ address: '127.0.0.1:1' }], match: { services: ['x.Api'] } });
  op = await startOperator(ns, { cache: { probeEveryMs: 300, redisTimeoutMs: 300, cleanupTimeoutMs: 3000 } });
});

afterAll(async () => {
  await op?.stop();
});

it('RedisReachable=False names the error; deletion retries, then gives up after the bounded time', async () => {
  const port = await freePort();
  await custom().createNamespacedCustomObject({
    ...ref('api-cache'),
    body: {
      apiVersion: 'sibyl.dev/v1alpha1',
      kind: 'CacheTier',
      metadata: { name: 'api-cache' },
      spec: {
        pools: ['api'],
        methods: [{ method: '/x.Api/Get' }],
        l2: { redis: { url: `redis://127.0.0.1:${port}` } },
      },
    },
  });
  const down = await waitFor(
    async () => {
      const t = (await custom().getNamespacedCustomObject(ref('api-cache'))) as TierView;
      return t.status?.conditions?.find((c) => c.type === 'RedisReachable' && c.status === 'False');
    },
    { what: 'RedisReachable=False' },
  );
  expect(down.reason).toBe('Unreachable');
  expect(down.message).toContain(`redis://127.0.0.1:${port}`);
  expect(down.message).toMatch(/ECONNREFUSED|not reachable/);
  // Ready does not hang on Redis: routers serve from L1 and L3 meanwhile.
  const t = (await custom().getNamespacedCustomObject(ref('api-cache'))) as TierView;
  expect(t.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');

  const t0 = Date.now();
  await kubectlOk(['delete', 'ct', 'api-cache', '-n', ns, '--wait=false']);
  await waitFor(async () => (await listEvents(ns, 'api-cache')).some((e) => e.reason === 'CleanupRetrying'), {
    what: 'a CleanupRetrying event',
  });
  expect((await kubectl(['get', 'ct', 'api-cache', '-n', ns])).code).toBe(0); // still held by the finalizer
  await waitFor(async () => (await kubectl(['get', 'ct', 'api-cache', '-n', ns])).code !== 0, {
    what: 'the CacheTier to go after the cleanup gives up',
  });
  const gone = Date.now() - t0;
  const abandoned = (await listEvents(ns, 'api-cache')).find((e) => e.reason === 'CleanupAbandoned');
  expect(abandoned?.type).toBe('Warning');
  expect(abandoned?.message).toMatch(/removing the finalizer/);
  // The bound is counted from metadata.deletionTimestamp, which the API server keeps to whole seconds
  // (truncated), so the 3 s limit can be reached as early as 2 s after the delete request.
  expect(gone).toBeGreaterThanOrEqual(2000);
});
