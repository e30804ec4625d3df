import { createNamespace, kubectlOk } from '../../support/kube.js';
import {
  createPool,
  createService,
  deletePool,
  deleteSlice,
  getPool,
  listEvents,
  putSlices,
  type PoolView,
} from '../../support/objects.js';
import { metricValue, reconciles, startOperator } from '../../support/operator.js';
import { waitFor } from '../../support/wait.js';
import type { Operator } from '../../../src/operator/operator.js';

let ns: string;
let op: Operator;

beforeAll(async () => {
  ns = await createNamespace('pool');
  op = await startOperator(ns);
});
afterAll(async () => {
  await op.stop();
});

const spec = (service = 'checkout') => ({
  service: { name: service, port: 'grpc' },
  match: { services: ['shop.Checkout'] },
  balancing: { policy: 'PeakEwma' },
});
const cond = (p: PoolView, type: string) => p.status?.conditions?.find((c) => c.type === type);

it('lists the ready endpoints of the Service within seconds, with conditions and a decision', async () => {
  await createService(ns, 'checkout');
  await putSlices(ns, 'checkout', [
    { port: 50001, pod: 'checkout-a' },
    { port: 50002, pod: 'checkout-b' },
    { port: 50003, pod: 'checkout-c', ready: false },
  ]);
  const t0 = Date.now();
  await createPool(ns, 'checkout', spec());
  const p = await waitFor(
    async () => {
      const p = await getPool(ns, 'checkout');
      return p.status?.endpointsSummary === '2/3' ? p : undefined;
    },
    // Watch events drive it, not the resync (every 5 min): 20 s tells them apart with room for a loaded
    // machine. The time it took is logged, not asserted.
    { what: 'status 2/3', timeoutMs: 20_000 },
  );
  console.log(`pool status listed the endpoints ${Date.now() - t0} ms after the pool was created`);
  expect(p.status?.observedGeneration).toBe(p.metadata.generation);
  expect(p.status?.endpoints?.map((e) => [e.address, e.pod, e.ready])).toEqual([
    ['checkout-a.localhost:50001', 'checkout-a', true],
    ['checkout-b.localhost:50002', 'checkout-b', true],
    ['checkout-c.localhost:50003', 'checkout-c', false],
  ]);
  expect(cond(p, 'Ready')).toMatchObject({ status: 'True', reason: 'EndpointsReady' });
  expect(p.status?.decision).toBe('PeakEwma: 2 of 3 endpoints ready; checkout-c excluded (not ready)');
});

it('follows the slices up and down, with EndpointAdded and EndpointRemoved events', async () => {
  const before = cond(await getPool(ns, 'checkout'), 'Ready')?.lastTransitionTime;
  await putSlices(ns, 'checkout', [
    { port: 50004, pod: 'checkout-d' },
    { port: 50003, pod: 'checkout-c', ready: true },
  ]);
  await waitFor(async () => (await getPool(ns, 'checkout')).status?.endpointsSummary === '4/4', {
    what: 'status 4/4',
  });
  await deleteSlice(ns, 'checkout', 50001);
  const p = await waitFor(
    async () => {
      const p = await getPool(ns, 'checkout');
      return p.status?.endpointsSummary === '3/3' ? p : undefined;
    },
    { what: 'status 3/3' },
  );
  expect(cond(p, 'Ready')?.lastTransitionTime).toBe(before); // still True: no transition
  const events = await waitFor(
    async () => {
      const ev = await listEvents(ns, 'checkout');
      return ev.some((e) => e.reason === 'EndpointRemoved') ? ev : undefined;
    },
    { what: 'EndpointRemoved event' },
  );
  const added = events.filter((e) => e.reason === 'EndpointAdded').map((e) => e.message ?? '');
  expect(added.some((m) => m.includes('checkout-d.localhost:50004 (pod checkout-d) joined the pool'))).toBe(
    true,
  );
  const removed = events.find((e) => e.reason === 'EndpointRemoved');
  expect(removed?.message).toContain(
    'checkout-a.localhost:50001 (pod checkout-a) left the pool; 3 of 3 ready',
  );
  expect(removed?.involvedObject.uid).toBe(p.metadata.uid);
});

it('says when the Service does not exist, and recovers when it appears', async () => {
  await createPool(ns, 'orphan', spec('nowhere'));
  const p = await waitFor(
    async () => {
      const p = await getPool(ns, 'orphan');
      return cond(p, 'Ready')?.reason === 'ServiceNotFound' ? p : undefined;
    },
    { what: 'ServiceNotFound' },
  );
  expect(cond(p, 'Ready')).toMatchObject({
    status: 'False',
    message: `Service ${ns}/nowhere does not exist`,
  });
  expect(p.status?.decision).toBe(`No traffic: Service ${ns}/nowhere does not exist.`);
  const warn = await waitFor(
    async () => (await listEvents(ns, 'orphan')).find((e) => e.reason === 'ServiceNotFound'),
    { what: 'event' },
  );
  expect(warn.type).toBe('Warning');
  await createService(ns, 'nowhere');
  await putSlices(ns, 'nowhere', [{ port: 50010 }]);
  await waitFor(async () => cond(await getPool(ns, 'orphan'), 'Ready')?.status === 'True', {
    what: 'Ready after the Service appears',
  });
});

it('names a port the Service does not have', async () => {
  await createPool(ns, 'badport', { ...spec(), service: { name: 'checkout', port: 'http' } });
  const p = await waitFor(
    async () => {
      const p = await getPool(ns, 'badport');
      return cond(p, 'Ready')?.reason === 'PortNotFound' ? p : undefined;
    },
    { what: 'PortNotFound' },
  );
  expect(cond(p, 'Ready')?.message).toBe('Service checkout has no port http (it has: grpc/50051)');
});

it('kubectl describe shows the decision, the endpoint table and the events', async () => {
  const out = await kubectlOk(['describe', 'bp', 'checkout', '-n', ns]);
  expect(out).toMatch(/Decision:\s+PeakEwma: 3 of 3 endpoints ready/);
  expect(out).toMatch(/Address:\s+checkout-d.localhost:50004/);
  expect(out).toMatch(/Pod:\s+checkout-d/);
  expect(out).toMatch(/Events:[\s\S]*EndpointRemoved[\s\S]*left the pool/);
  const get = await kubectlOk(['get', 'bp', 'checkout', '-n', ns]);
  expect(get).toMatch(/checkout\s+PeakEwma\s+3\/3\s+0\s+True/);
});

it('writes no status when nothing changed', async () => {
  await waitFor(async () => (await getPool(ns, 'checkout')).status?.endpointsSummary === '3/3');
  const rv = (await getPool(ns, 'checkout')).metadata.resourceVersion;
  const skipped = (why: string) => metricValue(op.metrics.statusSkipped, { kind: 'BackendPool', why });
  const [done0, unchanged0, deferred0] = await Promise.all([
    reconciles(op, 'BackendPool'),
    skipped('unchanged'),
    skipped('deferred'),
  ]);
  op.enqueuePool(`${ns}/checkout`); // starts its reconcile at once
  await waitFor(async () => op.reconciling === 0 && (await reconciles(op, 'BackendPool')) > done0, {
    what: 'the reconcile of checkout to finish',
  });
  // It found the status it computed already written, and left no write for later.
  expect(await skipped('unchanged')).toBeGreaterThan(unchanged0);
  expect(await skipped('deferred')).toBe(deferred0);
  expect((await getPool(ns, 'checkout')).metadata.resourceVersion).toBe(rv);
});

it('deleting a pool finishes (no finalizer is left behind)', async () => {
  await deletePool(ns, 'badport');
  await waitFor(
    async () => {
      try {
        await getPool(ns, 'badport');
        return false;
      } catch (e) {
        return (e as { code?: number }).code === 404;
      }
    },
    { what: 'the pool to be gone' },
  );
});
