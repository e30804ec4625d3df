import { execFileSync } from 'node:child_process';
import { createNamespace, kubectl, kubectlOk } from '../../support/kube.js';
import { createPool, listEvents } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { serviceAccountKubeConfig } from '../../support/token.js';
import { waitFor } from '../../support/wait.js';

/**
 * Least privilege for Secrets: the operator runs with a ServiceAccount token bound to exactly the
 * chart's RBAC, which grants `get secrets` only in the namespaces (and names) operator.secretAccess
 * lists. A CacheTier whose Secret is outside the grant says so (Ready=False, SecretForbidden, naming
 * the permission and the value); inside it, the Secret is read and Redis answers; widening the grant
 * (a helm upgrade's new Roles) heals the refused tiers without a restart.
 */
const REDIS = process.env.SIBYL_TEST_REDIS_URL as string;

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
const conditions = async (ns: string, name: string): Promise<Record<string, Cond>> => {
  const t = JSON.parse(await kubectlOk(['get', 'ct', name, '-n', ns, '-o', 'json'])) as {
    status?: { conditions?: Cond[] };
  };
  return Object.fromEntries((t.status?.conditions ?? []).map((c) => [c.type, c]));
};

/** A pool, a Secret holding the test Redis's URL, and a CacheTier reading it. */
async function tierWithSecret(ns: string, tier: string, pool: string, secret: string) {
  await createPool(ns, pool, { endpoints: [{ address: '127.0.0.1:1' }], match: { services: ['x.Api'] } });
  const items = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: secret }, stringData: { url: REDIS } },
    {
      apiVersion: 'sibyl.dev/v1alpha1',
      kind: 'CacheTier',
      metadata: { name: tier },
      spec: {
        pools: [pool],
        methods: [{ method: '/x.Api/Get' }],
        l2: { redis: { secretRef: { name: secret } } },
      },
    },
  ];
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}

it('reads Secrets only where operator.secretAccess grants them; elsewhere the tier names the missing grant', async () => {
  const home = await createNamespace('sa-home'); // the release namespace: the operator's account
  const granted = await createNamespace('sa-granted');
  const denied = await createNamespace('sa-denied');
  const release = `a${home.slice(-6)}`;
  const rbac = (namespaces: string[], names: string[]) =>
    execFileSync(
      'helm',
      [
        'template',
        release,
        'charts/sibyl',
        '--namespace',
        home,
        '--show-only',
        'templates/operator-rbac.yaml',
        '--set',
        `operator.secretAccess.namespaces={${namespaces.join(',')}}`,
        '--set',
        `operator.secretAccess.names={${names.join(',')}}`,
      ],
      { encoding: 'utf8' },
    );
  await kubectlOk(['apply', '-f', '-'], rbac([granted], ['redis']));
  const who = `system:serviceaccount:${home}:sibyl-operator`;
  const can = async (...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, '--as', who])).stdout.trim();
  expect(await can('get', 'secrets', '-A')).toBe('no');
  expect(await can('get', 'secrets/redis', '-n', granted)).toBe('yes');
  expect(await can('get', 'secrets/other', '-n', granted)).toBe('no');
  expect(await can('get', 'secrets/redis', '-n', denied)).toBe('no');

  await tierWithSecret(granted, 'cache', 'api', 'redis');
  await tierWithSecret(granted, 'cache-other', 'api2', 'other'); // a Secret the names leave out
  await tierWithSecret(denied, 'cache', 'api', 'redis'); // a namespace the grant leaves out
  await tierWithSecret(denied, 'doomed', 'api2', 'redis'); // deleted while refused
  const kc = await serviceAccountKubeConfig(home, 'sibyl-operator');
  const ops = [await startOperator(granted, { kc }), await startOperator(denied, { kc })];
  try {
    await waitFor(
      async () => {
        const c = await conditions(granted, 'cache');
        return (
          c.RedisReachable?.status === 'True' && c.Ready?.status === 'True' && c.Invalid?.status === 'False'
        );
      },
      { what: 'the tier in the granted namespace reads its Secret and reaches Redis' },
    );

    const refused = await waitFor(
      async () => {
        const c = await conditions(denied, 'cache');
        return c.Ready?.reason === 'SecretForbidden' ? c : undefined;
      },
      { what: 'Ready=False SecretForbidden in the namespace the grant leaves out' },
    );
    expect(refused.Ready).toMatchObject({ status: 'False' });
    expect(refused.Ready?.message).toContain(`"get" on "secrets" (namespace ${denied}, name redis)`);
    expect(refused.Ready?.message).toContain(`operator.secretAccess.namespaces (add ${denied};`);
    expect(refused.Ready?.message).toContain(`User "${who}" cannot get resource "secrets"`);
    expect(refused.Invalid).toMatchObject({ status: 'Unknown', reason: 'SecretForbidden' });
    expect(refused.RedisReachable).toMatchObject({ status: 'Unknown' });
    const warning = await waitFor(
      async () => (await listEvents(denied, 'cache')).find((e) => e.reason === 'SecretForbidden'),
      { what: 'a SecretForbidden event' },
    );
    expect(warning.type).toBe('Warning');

    const other = await waitFor(
      async () => {
        const c = await conditions(granted, 'cache-other');
        return c.Ready?.reason === 'SecretForbidden' ? c.Ready : undefined;
      },
      { what: 'SecretForbidden for a Secret operator.secretAccess.names leaves out' },
    );
    expect(other.message).toContain(`if operator.secretAccess.names is set, add other`);

    // A refused tier never pins its deletion: the cleanup says why it cannot reach Redis and lets go.
    await waitFor(async () => (await conditions(denied, 'doomed')).Ready?.reason === 'SecretForbidden', {
      what: 'the second refused tier reconciled (finalizer set)',
    });
    await kubectlOk(['delete', 'ct', 'doomed', '-n', denied, '--wait=false']);
    await waitFor(async () => (await kubectl(['get', 'ct', 'doomed', '-n', denied])).code !== 0, {
      what: 'the refused tier deleted',
    });
    const skipped = (await listEvents(denied, 'doomed')).find((e) => e.reason === 'CleanupSkipped');
    expect(skipped?.message).toContain('the operator may not read Secret redis');

    // A refusal is a condition, not a failed reconcile: no errors, no crash.
    for (const op of ops) {
      const errors = (await op.metrics.reconcileErrors.get()).values.reduce((a, v) => a + v.value, 0);
      expect(errors).toBe(0);
    }

    // Widen the grant, as `helm upgrade --set operator.secretAccess...` would: both tiers heal.
    await kubectlOk(['apply', '-f', '-'], rbac([granted, denied], ['redis', 'other']));
    for (const [ns, name] of [
      [denied, 'cache'],
      [granted, 'cache-other'],
    ] as const) {
      await waitFor(
        async () => {
          const c = await conditions(ns, name);
          return (
            c.RedisReachable?.status === 'True' && c.Ready?.status === 'True' && c.Invalid?.status === 'False'
          );
        },
        // Refused reads back off up to a minute: the grant is seen at the next retry.
        { what: `${ns}/${name} healed by the wider grant`, timeoutMs: 90_000 },
      );
    }
  } finally {
    for (const op of ops) await op.stop();
  }
});
