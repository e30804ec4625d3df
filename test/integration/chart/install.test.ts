import { createNamespace, kubectl, kubectlOk } from '../../support/kube.js';
import { CHART, helm } from './helm.js';

/**
 * helm install, upgrade and uninstall against the real API server. There is no kubelet: Deployments
 * exist and make no Pods, which is all these tests need.
 */

let ns: string;
let release: string;
/** The namespace the secretAccess test grants, once it ran. */
let shopNs: string | undefined;
const installed = [
  'deployment/REL-operator',
  'deployment/REL-envoy',
  'service/REL-operator',
  'service/REL-operator-metrics',
  'service/REL-envoy',
  'serviceaccount/sibyl-operator',
  'serviceaccount/sibyl-envoy',
  'configmap/REL-envoy',
  'configmap/REL-xds-bootstrap',
  'horizontalpodautoscaler/REL-envoy',
  'secret/REL-control-tls',
  'role/REL-operator-leader-election',
  'rolebinding/REL-operator-leader-election',
  'role/REL-operator-secrets',
  'rolebinding/REL-operator-secrets',
  'poddisruptionbudget/REL-operator',
  'poddisruptionbudget/REL-envoy',
  'networkpolicy/REL-operator',
  'configmap/REL-dashboard',
];
const names = () => installed.map((n) => n.replace('REL', release));

/** helm upgrade of the release with its values and these --set. */
const upgrade = (...set: string[]) =>
  helm(['upgrade', release, CHART, '--namespace', ns, '--reuse-values', ...set.flatMap((v) => ['--set', v])]);

/** The operator Deployment's arguments, as the API server holds them. */
async function operatorArgs(): Promise<string[] | undefined> {
  const op = JSON.parse(
    await kubectlOk(['get', 'deployment', `${release}-operator`, '-n', ns, '-o', 'json']),
  ) as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
  return op.spec.template.spec.containers[0]?.args;
}

const secretData = async () =>
  (
    JSON.parse(await kubectlOk(['get', 'secret', `${release}-control-tls`, '-n', ns, '-o', 'json'])) as {
      data: Record<string, string>;
    }
  ).data;

async function reviewed(user: string, verb: string, group: string, resource: string): Promise<boolean> {
  const sar = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      resourceAttributes: { namespace: ns, verb, group, resource },
    },
  };
  const out = await kubectlOk(['create', '-o', 'json', '-f', '-'], JSON.stringify(sar));
  return (JSON.parse(out) as { status: { allowed: boolean } }).status.allowed;
}

beforeAll(async () => {
  ns = await createNamespace('chart-install');
  release = `s${ns.slice(-6)}`;
  await helm(['install', release, CHART, '--namespace', ns]);
});

afterAll(async () => {
  await helm(['uninstall', release, '--namespace', ns]).catch(() => undefined);
});

it('helm install creates every object of the chart', async () => {
  await kubectlOk(['get', '-n', ns, ...names()]);
  await kubectlOk(['get', `clusterrole/${release}-operator`, `clusterrolebinding/${release}-operator`]);
  const data = await secretData();
  expect(Object.keys(data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
  const dep = JSON.parse(
    await kubectlOk(['get', 'deployment', `${release}-operator`, '-n', ns, '-o', 'json']),
  ) as {
    spec: { replicas: number };
  };
  expect(dep.spec.replicas).toBe(2);
  const notes = await helm(['get', 'notes', release, '--namespace', ns]);
  expect(notes).toMatch(/kubectl apply .*backendpool/);
  expect(notes).toMatch(/kubectl describe bp/);
  expect(notes).toContain(`Secrets:  the operator may get any Secret in ${ns} (operator.secretAccess`);
});

it('gives the operator its permissions and nothing more (kubectl auth can-i)', async () => {
  const who = `system:serviceaccount:${ns}:sibyl-operator`;
  const can = async (...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, '--as', who, '-n', ns])).stdout.trim();
  expect(await can('patch', 'backendpools.sibyl.dev', '--subresource=status')).toBe('yes');
  expect(await can('watch', 'backendpools.sibyl.dev', '--all-namespaces')).toBe('yes');
  expect(await can('create', 'tokenreviews.authentication.k8s.io')).toBe('yes');
  // metrics.k8s.io is not served here, so kubectl cannot resolve it: ask with a SubjectAccessReview.
  expect(await reviewed(who, 'list', 'metrics.k8s.io', 'pods')).toBe(true);
  expect(await reviewed(who, 'delete', 'metrics.k8s.io', 'pods')).toBe(false);
  expect(await can('update', 'leases.coordination.k8s.io')).toBe('yes');
  // Secrets: get only (a CacheTier's Redis URL, read by name), never list or watch, and by default in
  // the release namespace only: nothing cluster-wide.
  expect(await can('get', 'secrets')).toBe('yes');
  expect(await can('get', 'secrets', '--all-namespaces')).toBe('no');
  expect(await can('list', 'secrets', '--all-namespaces')).toBe('no');
  expect(await can('list', 'secrets')).toBe('no');
  expect(await can('watch', 'secrets')).toBe('no');
  expect(
    (await kubectl(['auth', 'can-i', 'get', 'secrets', '--as', who, '-n', 'default'])).stdout.trim(),
  ).toBe('no');
  // CacheTiers are patched for their cleanup finalizer; BackendPools never are.
  expect(await can('patch', 'cachetiers.sibyl.dev')).toBe('yes');
  expect(await can('patch', 'backendpools.sibyl.dev')).toBe('no');
  expect(await can('create', 'pods')).toBe('no');
  expect(await can('delete', 'backendpools.sibyl.dev')).toBe('no');
  expect(await can('update', 'backendpools.sibyl.dev')).toBe('no');
  expect(await can('create', 'roles.rbac.authorization.k8s.io')).toBe('no');
  expect(await can('update', 'clusterroles.rbac.authorization.k8s.io')).toBe('no');
  expect(await can('create', 'clusterrolebindings.rbac.authorization.k8s.io')).toBe('no');
  // The Lease permission holds in the release namespace only.
  const elsewhere = await kubectl([
    'auth',
    'can-i',
    'update',
    'leases.coordination.k8s.io',
    '--as',
    who,
    '-n',
    'default',
  ]);
  expect(elsewhere.stdout.trim()).toBe('no');
  // Envoy's account calls no API at all: its token is only presented to the operator, which accepts it.
  const envoy = `system:serviceaccount:${ns}:sibyl-envoy`;
  for (const verb of ['list', 'get', 'watch'])
    expect(
      (
        await kubectl(['auth', 'can-i', verb, 'backendpools.sibyl.dev', '--as', envoy, '-n', ns])
      ).stdout.trim(),
    ).toBe('no');
  expect((await kubectl(['auth', 'can-i', 'get', 'configmaps', '--as', envoy, '-n', ns])).stdout.trim()).toBe(
    'no',
  );
  expect(await operatorArgs()).toContain(`--allowed-routers=${ns}/sibyl-envoy`);
});

it('helm upgrade keeps the generated certificate and applies new values', async () => {
  const before = await secretData();
  await upgrade('envoy.autoscaling.enabled=false,envoy.replicas=3');
  expect(await secretData()).toEqual(before);
  const dep = JSON.parse(
    await kubectlOk(['get', 'deployment', `${release}-envoy`, '-n', ns, '-o', 'json']),
  ) as {
    spec: { replicas: number };
  };
  expect(dep.spec.replicas).toBe(3);
  expect((await kubectl(['get', 'hpa', `${release}-envoy`, '-n', ns])).code).toBe(1);
  const history = await helm(['history', release, '--namespace', ns, '-o', 'json']);
  expect((JSON.parse(history) as unknown[]).length).toBe(2);
});

it('helm upgrade to dataPlane: sibyl replaces the Envoys with routers, and their account on the allowed list', async () => {
  await upgrade('dataPlane=sibyl');
  await kubectlOk(['get', '-n', ns, `deployment/${release}-router`, 'serviceaccount/sibyl-router']);
  for (const gone of [
    `deployment/${release}-envoy`,
    `configmap/${release}-envoy`,
    'serviceaccount/sibyl-envoy',
  ])
    expect((await kubectl(['get', '-n', ns, gone])).code).toBe(1);
  await kubectlOk(['get', '-n', ns, `configmap/${release}-xds-bootstrap`]);
  expect(await operatorArgs()).toContain(`--allowed-routers=${ns}/sibyl-router`);
  const router = `system:serviceaccount:${ns}:sibyl-router`;
  expect(
    (
      await kubectl(['auth', 'can-i', 'list', 'backendpools.sibyl.dev', '--as', router, '-n', ns])
    ).stdout.trim(),
  ).toBe('no');
});

it('operator.secretAccess moves the Secret grant to the namespaces and names it lists', async () => {
  const shop = await createNamespace('chart-shop');
  await upgrade(`operator.secretAccess.namespaces={${shop}}`, 'operator.secretAccess.names={redis}');
  const who = `system:serviceaccount:${ns}:sibyl-operator`;
  const can = async (...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, '--as', who])).stdout.trim();
  expect(await can('get', 'secrets/redis', '-n', shop)).toBe('yes');
  expect(await can('get', 'secrets/other', '-n', shop)).toBe('no');
  expect(await can('get', 'secrets', '-n', shop)).toBe('no'); // resourceNames: no unnamed get
  expect(await can('list', 'secrets', '-n', shop)).toBe('no');
  expect(await can('get', 'secrets/redis', '-n', ns)).toBe('no'); // the release namespace is no longer listed
  expect(await can('get', 'secrets', '-A')).toBe('no');
  await kubectlOk([
    'get',
    '-n',
    shop,
    `role/${release}-operator-secrets`,
    `rolebinding/${release}-operator-secrets`,
  ]);
  expect(await helm(['get', 'notes', release, '--namespace', ns])).toContain(
    `Secrets:  the operator may get redis in ${shop} (`,
  );
  shopNs = shop;
});

it('helm uninstall removes what it installed and leaves the CRDs', async () => {
  await helm(['uninstall', release, '--namespace', ns, '--wait', '--timeout', '60s']);
  // What the chart made, and the routers the switch to dataPlane: sibyl made.
  const routers = ['deployment/REL-router', 'service/REL-router', 'serviceaccount/sibyl-router'];
  for (const n of [...names(), ...routers.map((r) => r.replace('REL', release))]) {
    const r = await kubectl(['get', '-n', ns, n]);
    expect({ n, code: r.code, notFound: /NotFound|not found/.test(r.stderr) }).toEqual({
      n,
      code: 1,
      notFound: true,
    });
  }
  expect((await kubectl(['get', `clusterrole/${release}-operator`])).code).toBe(1);
  if (shopNs) expect((await kubectl(['get', '-n', shopNs, `role/${release}-operator-secrets`])).code).toBe(1);
  await kubectlOk(['get', 'crd', 'backendpools.sibyl.dev', 'cachetiers.sibyl.dev']);
});
