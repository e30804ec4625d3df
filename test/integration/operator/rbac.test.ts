import { execFileSync } from 'node:child_process';
import { createNamespace, kubectl, kubectlOk } from '../../support/kube.js';
import { createPool, createService, getPool, listEvents, putSlices } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { serviceAccountKubeConfig } from '../../support/token.js';
import { waitFor } from '../../support/wait.js';

/** The operator's whole job with a ServiceAccount token bound to exactly the chart's RBAC rules. */
it('reconciles, records events and leads with only the RBAC the chart grants', async () => {
  const ns = await createNamespace('rbac');
  const release = `r${ns.slice(-6)}`;
  const rendered = execFileSync(
    'helm',
    ['template', release, 'charts/sibyl', '--namespace', ns, '--show-only', 'templates/operator-rbac.yaml'],
    {
      encoding: 'utf8',
    },
  );
  await kubectlOk(['apply', '-n', ns, '-f', '-'], rendered);
  const kc = await serviceAccountKubeConfig(ns, 'sibyl-operator');

  const who = `system:serviceaccount:${ns}:sibyl-operator`;
  const can = async (...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, '--as', who, '-n', ns])).stdout.trim();
  expect(await can('patch', 'backendpools.sibyl.dev', '--subresource=status')).toBe('yes');
  // Secrets: get only (a CacheTier's Redis URL by name), never list or watch.
  expect(await can('get', 'secrets')).toBe('yes');
  expect(await can('list', 'secrets')).toBe('no');
  expect(await can('delete', 'backendpools.sibyl.dev')).toBe('no');
  expect(await can('create', 'pods')).toBe('no');

  await createService(ns, 'api');
  await putSlices(ns, 'api', [{ port: 50101, pod: 'api-a' }]);
  await createPool(ns, 'api', { service: { name: 'api' }, match: { services: ['x.Api'] } });
  // A CacheTier whose Redis URL is in a Secret: the operator reads it and sets its finalizer.
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'redis' },
          stringData: { url: process.env.SIBYL_TEST_REDIS_URL },
        },
        {
          apiVersion: 'sibyl.dev/v1alpha1',
          kind: 'CacheTier',
          metadata: { name: 'api-cache' },
          spec: {
            pools: ['api'],
            methods: [{ method: '/x.Api/Get' }],
            l2: { redis: { secretRef: { name: 'redis' } } },
          },
        },
      ],
    }),
  );
  const op = await startOperator(ns, {
    kc,
    leaderElection: { namespace: ns, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 },
  });
  try {
    await waitFor(async () => (await getPool(ns, 'api')).status?.endpointsSummary === '1/1', {
      what: 'status written with the SA token',
    });
    await waitFor(async () => (await listEvents(ns, 'api')).some((e) => e.reason === 'EndpointAdded'), {
      what: 'an event',
    });
    await waitFor(
      async () => {
        const t = JSON.parse(await kubectlOk(['get', 'ct', 'api-cache', '-n', ns, '-o', 'json'])) as {
          metadata: { finalizers?: string[] };
          status?: { conditions?: Array<{ type: string; status: string }> };
        };
        const is = (type: string) => t.status?.conditions?.find((c) => c.type === type)?.status;
        return (
          t.metadata.finalizers?.includes('sibyl.dev/cache-cleanup') &&
          is('Invalid') === 'False' &&
          is('RedisReachable') === 'True'
        );
      },
      { what: 'the CacheTier reconciled with the SA token (Secret read, finalizer set)' },
    );
    expect(op.isLeader).toBe(true);
    const lease = JSON.parse(await kubectlOk(['get', 'lease', 'sibyl-operator', '-n', ns, '-o', 'json'])) as {
      spec: { holderIdentity: string };
    };
    expect(lease.spec.holderIdentity).toBeTruthy();
    expect(
      Number(await op.metrics.reconcileErrors.get().then((m) => m.values.reduce((a, v) => a + v.value, 0))),
    ).toBe(0);
  } finally {
    await op.stop();
  }
});
