import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createNamespace, kubectl, kubectlOk } from '../../support/kube.js';
import { createPool, createService, getPool, putSlices } from '../../support/objects.js';
import { INFORMERS, metricValue, startOperator } from '../../support/operator.js';
import { waitFor } from '../../support/wait.js';

/**
 * The kube-apiserver process is stopped and started under a running operator. This file runs its own
 * control plane, so restarting it disturbs no other test file.
 */
const dir = join(process.env.SIBYL_TEST_WORK ?? '/tmp', 'restart-cluster');
const cluster = (cmd: string) =>
  execFileSync('hack/local-cluster.sh', [cmd], {
    encoding: 'utf8',
    env: { ...process.env, SIBYL_CLUSTER_DIR: dir },
  });
const saved = process.env.KUBECONFIG;

beforeAll(async () => {
  cluster('up');
  process.env.KUBECONFIG = join(dir, 'kubeconfig');
  await kubectlOk(['apply', '-f', 'crds']);
  await kubectlOk(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  // Established comes a moment before the resource is served.
  await waitFor(async () => (await kubectl(['get', 'bp,ct', '-A'])).code === 0, {
    what: 'the CRDs to be served',
  });
});
afterAll(() => {
  process.env.KUBECONFIG = saved;
  cluster('down');
});

it('resumes its watches after an API server restart and converges to changes made meanwhile', async () => {
  const ns = await createNamespace('restart');
  await createService(ns, 'svc');
  await putSlices(ns, 'svc', [{ port: 50301 }]);
  await createPool(ns, 'p', { service: { name: 'svc' }, match: { services: ['x.Y'] } });
  const op = await startOperator(ns);
  try {
    await waitFor(async () => (await getPool(ns, 'p')).status?.endpointsSummary === '1/1', {
      what: 'first status',
    });
    const failures = () =>
      Promise.all(
        INFORMERS.map((informer) => metricValue(op.metrics.informerRestarts, { informer, reason: 'error' })),
      );
    const before = await failures();
    cluster('stop-apiserver');
    // The operator's watches fail and back off: each of its informers counts a failure.
    await waitFor(async () => (await failures()).every((n, i) => n > (before[i] as number)), {
      timeoutMs: 30_000,
      what: "every informer's watch to fail",
    });
    cluster('start-apiserver');
    await putSlices(ns, 'svc', [{ port: 50302 }, { port: 50303, ready: false }]);
    const p = await waitFor(
      async () => {
        const p = await getPool(ns, 'p');
        return p.status?.endpointsSummary === '2/3' ? p : undefined;
      },
      { timeoutMs: 30_000, what: 'status to show the change made after the restart' },
    );
    expect(p.status?.endpoints?.map((e) => e.address)).toEqual([
      'backend-50301.localhost:50301',
      'backend-50302.localhost:50302',
      'backend-50303.localhost:50303',
    ]);
    const restarts = (await op.metrics.informerRestarts.get()).values.reduce((a, v) => a + v.value, 0);
    expect(restarts).toBeGreaterThan(0);
  } finally {
    await op.stop();
  }
});
