import * as k8s from '@kubernetes/client-node';
import { ControlClient } from '../../../src/control/client.js';
import type { WirePool } from '../../../src/control/messages.js';
import { systemClock, systemRandom } from '../../../src/util/clock.js';
import { makeLogger } from '../../../src/util/log.js';
import { systemTimers } from '../../../src/util/timers.js';
import type { Operator } from '../../../src/operator/operator.js';
import { createNamespace, kubeConfig } from '../../support/kube.js';
import { createPool, createService, deleteSlice, putSlices } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { makeServingCert } from '../../support/tls.js';
import { waitFor } from '../../support/wait.js';

/** The control stream against a real API server: TLS, TokenReview, snapshots, deltas, acks. */

let ns: string;
let op: Operator;
const tls = makeServingCert();
const clients: ControlClient[] = [];

async function tokenFor(sa: string): Promise<string> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core
    .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } })
    .catch(() => undefined);
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace: ns,
    body: { spec: { audiences: [] } },
  });
  return tr.status?.token as string;
}

interface Seen {
  versions: number[];
  pools: WirePool[];
  errors: string[];
}

function subscribe(token: string, seen: Seen, id = 'r1'): ControlClient {
  const c = new ControlClient({
    address: `localhost:${op.controlPort}`,
    ca: tls.ca,
    token: async () => token,
    routerId: id,
    namespace: ns,
    version: 'test',
    apply: (pools, version) => {
      seen.versions.push(version);
      seen.pools = [...pools];
      return undefined;
    },
    report: () => ({ endpoints: [], samples: [], caches: [] }),
    log: makeLogger('router', 'silent'),
    clock: systemClock,
    timers: systemTimers,
    random: systemRandom,
  });
  c.start();
  clients.push(c);
  return c;
}

beforeAll(async () => {
  ns = await createNamespace('control');
  op = await startOperator(ns, {
    control: {
      addr: '127.0.0.1:0',
      tls: { cert: tls.cert, key: tls.key },
      allowedRouters: [`${ns}/router`],
      pushIntervalMs: 500,
    },
  });
  await createService(ns, 'svc');
  await putSlices(ns, 'svc', [{ port: 50401 }, { port: 50402 }]);
  await createPool(ns, 'p', {
    service: { name: 'svc' },
    match: { services: ['x.Y'] },
    balancing: { policy: 'RoundRobin' },
  });
});
afterAll(async () => {
  for (const c of clients) c.stop();
  await op.stop();
});

it('an allowed router gets the snapshot over TLS, then urgent changes within a push', async () => {
  const seen: Seen = { versions: [], pools: [], errors: [] };
  const c = subscribe(await tokenFor('router'), seen);
  await waitFor(() => seen.pools.find((p) => p.name === `${ns}/p`)?.endpoints.length === 2, {
    what: 'the snapshot',
  });
  const pool = seen.pools.find((p) => p.name === `${ns}/p`) as WirePool;
  expect(pool.policy).toBe('RoundRobin');
  expect(JSON.parse(pool.specJson)).toMatchObject({ match: { services: ['x.Y'] } });
  expect(pool.endpoints.map((e) => e.address).sort()).toEqual([
    'backend-50401.localhost:50401',
    'backend-50402.localhost:50402',
  ]);
  await waitFor(() => op.control?.server.routers()[0]?.ackedVersion === c.version, { what: 'the ack' });

  const t0 = Date.now();
  await deleteSlice(ns, 'svc', 50402);
  await waitFor(() => seen.pools.find((p) => p.name === `${ns}/p`)?.endpoints.length === 1, {
    what: 'the removal',
  });
  console.log(`endpoint removal reached the router in ${Date.now() - t0} ms`);
  expect(seen.versions.length).toBeGreaterThanOrEqual(2);
  expect([...seen.versions].sort((a, b) => a - b)).toEqual(seen.versions);
});

it('refuses a router without a valid token (UNAUTHENTICATED) and one not on the list (PERMISSION_DENIED)', async () => {
  const { Metadata, credentials, status } = await import('@grpc/grpc-js');
  const { controlClientConstructor } = await import('../../../src/control/proto.js');
  const Ctor = controlClientConstructor();
  const attempt = (token: string | undefined) =>
    new Promise<number>((resolve) => {
      const cl = new Ctor(`localhost:${op.controlPort}`, credentials.createSsl(tls.ca));
      const md = new Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      const call = (
        cl as unknown as { subscribe(m: typeof md): NodeJS.EventEmitter & { write(x: object): void } }
      ).subscribe(md);
      call.on('error', (e: { code: number }) => (resolve(e.code), cl.close()));
      call.on('data', () => (resolve(-1), cl.close()));
      call.write({ hello: { routerId: 'x', namespace: ns } });
    });
  expect(await attempt(undefined)).toBe(status.UNAUTHENTICATED);
  expect(await attempt('not-a-token')).toBe(status.UNAUTHENTICATED);
  expect(await attempt(await tokenFor('intruder'))).toBe(status.PERMISSION_DENIED);
  expect(await attempt(await tokenFor('router'))).toBe(-1);
});
