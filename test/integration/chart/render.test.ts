import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespace, kubectl, kubectlOk } from '../../support/kube.js';
import { CHART, find, helm, parseObjects, run, type Obj } from './helm.js';

/** The chart renders, lints and is accepted by a real API server with every ci/ value set. */

const ciFiles = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml'));

// cert-manager's API is not served here: stand-in CRDs (any spec) let the API server take its objects.
const certManagerCrds = ['certificates:Certificate', 'issuers:Issuer'].map((s) => {
  const [plural, kind] = s.split(':') as [string, string];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.cert-manager.io` },
    spec: {
      group: 'cert-manager.io',
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
});

beforeAll(async () => {
  const list = { apiVersion: 'v1', kind: 'List', items: certManagerCrds };
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(list));
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/certificates.cert-manager.io',
  ]);
  await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd/issuers.cert-manager.io']);
});

afterAll(async () => {
  await kubectl(['delete', 'crd', 'certificates.cert-manager.io', 'issuers.cert-manager.io', '--wait=false']);
});

it('has the five ci value sets the issue asks for', () => {
  expect(ciFiles.sort()).toEqual([
    'cert-manager-values.yaml',
    'defaults-values.yaml',
    'existing-secret-values.yaml',
    'hpa-values.yaml',
    'namespace-scoped-values.yaml',
  ]);
});

it('passes helm lint --strict with the defaults and with every ci value set', async () => {
  for (const f of [undefined, ...ciFiles]) {
    const args = ['lint', '--strict', CHART, ...(f ? ['-f', join(CHART, 'ci', f)] : [])];
    const r = await run('helm', args);
    expect({ f, code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({
      f,
      code: 0,
      out: '',
    });
  }
});

it.each(ciFiles)('renders %s and the API server accepts it (dry-run=server)', async (file) => {
  const ns = await createNamespace('chart');
  const args = ['template', `r${ns.slice(-6)}`, CHART, '--namespace', ns, '-f', join(CHART, 'ci', file)];
  if (file.startsWith('cert-manager')) args.push('--api-versions', 'cert-manager.io/v1');
  if (file.startsWith('namespace-scoped')) {
    const watched = await createNamespace('chart-watched');
    args.push(
      '--set',
      `operator.watchNamespace=${watched}`,
      '--set',
      `router.watchNamespace=${watched}`,
      '--set',
      `envoy.watchNamespace=${watched}`,
    );
  }
  const rendered = await helm(args);
  const objs = parseObjects(rendered);
  expect(objs.some((o) => o.kind === 'Deployment')).toBe(true);
  expect(objs.some((o) => o.apiVersion.startsWith('monitoring.coreos.com/'))).toBe(false);
  const out = await kubectlOk(['apply', '--dry-run=server', '-f', '-'], rendered);
  expect(out.split('\n').filter(Boolean)).toHaveLength(objs.length);
});

it('refuses cert-manager when its API is not served, and names the fix', async () => {
  const r = await run('helm', ['template', 'x', CHART, '-f', join(CHART, 'ci', 'cert-manager-values.yaml')]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/cert-manager\.io\/v1/);
});

it('renders ServiceMonitor and PrometheusRule only where monitoring.coreos.com/v1 is served', async () => {
  const without = parseObjects(await helm(['template', 'm', CHART]));
  expect(without.filter((o) => o.apiVersion === 'monitoring.coreos.com/v1')).toEqual([]);
  const withApi = parseObjects(
    await helm(['template', 'm', CHART, '--api-versions', 'monitoring.coreos.com/v1']),
  );
  const sm = find(withApi, 'ServiceMonitor', 'm') as Obj & { spec: { selector: { matchLabels: object } } };
  find(withApi, 'PrometheusRule', 'm');
  // The ServiceMonitor selects both metrics Services (Envoy's statistics on their own port and path).
  const selected = withApi.filter(
    (o) =>
      o.kind === 'Service' &&
      Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v),
  );
  expect(selected.map((o) => o.metadata.name).sort()).toEqual(['m-envoy', 'm-operator-metrics']);
  expect((sm.spec as unknown as { endpoints: object[] }).endpoints).toContainEqual(
    expect.objectContaining({ port: 'envoy-stats', path: '/stats/prometheus' }),
  );
});

it('runs every Deployment locked down: non-root, read-only root, no capabilities, RuntimeDefault, probes, resources', async () => {
  const objs = parseObjects(await helm(['template', 's', CHART, '--namespace', 'sibyl-system']));
  const withRouters = parseObjects(
    await helm(['template', 's', CHART, '--namespace', 'sibyl-system', '--set', 'dataPlane=sibyl']),
  );
  type Container = {
    args: string[];
    securityContext: Record<string, unknown>;
    readinessProbe?: object;
    livenessProbe?: object;
    resources?: { requests?: object };
    env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  };
  type Dep = Obj & {
    spec: {
      replicas?: number;
      template: { spec: { securityContext: Record<string, unknown>; containers: Container[] } };
    };
  };
  for (const [rendered, name] of [
    [objs, 's-operator'],
    [objs, 's-envoy'],
    [withRouters, 's-router'],
  ] as const) {
    const d = find(rendered, 'Deployment', name) as Dep;
    const pod = d.spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    for (const c of pod.containers) {
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.readinessProbe).toBeDefined();
      expect(c.livenessProbe).toBeDefined();
      expect(c.resources?.requests).toBeDefined();
    }
  }
  const op = find(objs, 'Deployment', 's-operator') as Dep;
  expect(op.spec.replicas).toBe(2);
  const c = op.spec.template.spec.containers[0] as Container;
  expect(c.args).toEqual(
    expect.arrayContaining([
      'operator',
      '--leader-elect=true',
      '--control-addr=:9443',
      '--allowed-routers=sibyl-system/sibyl-envoy',
    ]),
  );
  expect(c.env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe(
    'metadata.namespace',
  );
  const routerOp = (find(withRouters, 'Deployment', 's-operator') as Dep).spec.template.spec.containers[0];
  expect(routerOp?.args).toContain('--allowed-routers=sibyl-system/sibyl-router');
  const router = (find(withRouters, 'Deployment', 's-router') as Dep).spec.template.spec
    .containers[0] as Container;
  expect(router.args).toEqual(
    expect.arrayContaining([
      'router',
      '--control=s-operator.sibyl-system.svc:9443',
      '--control-ca=/etc/sibyl/control-ca/ca.crt',
    ]),
  );
  // CacheTiers' L3 has somewhere to write in the read-only router pod (the sample's l3.path).
  type Pod = { volumes: { name: string; emptyDir?: { sizeLimit?: string } }[] };
  const routerPod = (find(withRouters, 'Deployment', 's-router') as Dep).spec.template.spec as unknown as Pod;
  expect(routerPod.volumes.find((v) => v.name === 'disk-cache')?.emptyDir?.sizeLimit).toBe('2Gi');
  expect(
    (router as unknown as { volumeMounts: { name: string; mountPath: string }[] }).volumeMounts,
  ).toContainEqual({
    name: 'disk-cache',
    mountPath: '/var/cache/sibyl',
  });
  find(objs, 'PodDisruptionBudget', 's-operator');
  find(objs, 'NetworkPolicy', 's-operator');
  find(objs, 'ConfigMap', 's-dashboard');
  expect(withRouters.some((o) => o.kind === 'HorizontalPodAutoscaler')).toBe(false);
});

it('grants get secrets per namespace of operator.secretAccess, never cluster-wide, narrowed by names', async () => {
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
  type Role = Obj & { rules: Rule[] };
  type Binding = Obj & {
    roleRef: { kind: string; name: string };
    subjects: { name: string; namespace: string }[];
  };
  const render = async (...set: string[]) =>
    parseObjects(
      await helm([
        'template',
        's',
        CHART,
        '--namespace',
        'sibyl-system',
        '--show-only',
        'templates/operator-rbac.yaml',
        ...set.flatMap((v) => ['--set', v]),
      ]),
    );
  const secretRoles = (objs: Obj[]) =>
    objs
      .filter((o) => o.kind === 'Role' && o.metadata.name === 's-operator-secrets')
      .map((o) => ({ ns: o.metadata.namespace, rules: (o as Role).rules }));
  const secretRule = (names?: string[]) => ({
    apiGroups: [''],
    resources: ['secrets'],
    verbs: ['get'],
    ...(names ? { resourceNames: names } : {}),
  });

  // Defaults: the release namespace only, any Secret there; the ClusterRole has no Secrets at all.
  const defaults = await render();
  const cluster = find(defaults, 'ClusterRole', 's-operator') as Role;
  expect(cluster.rules.filter((r) => r.resources.includes('secrets'))).toEqual([]);
  expect(secretRoles(defaults)).toEqual([{ ns: 'sibyl-system', rules: [secretRule()] }]);
  const binding = defaults.find(
    (o) => o.kind === 'RoleBinding' && o.metadata.name === 's-operator-secrets',
  ) as Binding;
  expect(binding.metadata.namespace).toBe('sibyl-system');
  expect(binding.roleRef).toMatchObject({ kind: 'Role', name: 's-operator-secrets' });
  expect(binding.subjects).toEqual([
    { kind: 'ServiceAccount', name: 'sibyl-operator', namespace: 'sibyl-system' },
  ]);

  // A watched namespace holds the tiers, so it is the default there.
  expect(secretRoles(await render('operator.watchNamespace=shop'))).toEqual([
    { ns: 'shop', rules: [secretRule()] },
  ]);

  // Listed namespaces (and not the release one), each narrowed to the names.
  const listed = await render(
    'operator.secretAccess.namespaces={shop,cart}',
    'operator.secretAccess.names={redis,redis-tls}',
  );
  expect(secretRoles(listed)).toEqual([
    { ns: 'shop', rules: [secretRule(['redis', 'redis-tls'])] },
    { ns: 'cart', rules: [secretRule(['redis', 'redis-tls'])] },
  ]);
  const bindings = listed.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === 's-operator-secrets');
  expect(bindings.map((b) => b.metadata.namespace)).toEqual(['shop', 'cart']);

  // Off: no Secret anywhere.
  const off = await render('operator.secretAccess.enabled=false');
  expect(off.filter((o) => o.metadata.name === 's-operator-secrets')).toEqual([]);

  // The schema refuses what RBAC could not name.
  const bad = await run('helm', ['template', 's', CHART, '--set', 'operator.secretAccess.names={Redis_URL}']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/secretAccess\/names/);
});

it('carries the same CRDs as crds/ (make crds copies them)', () => {
  const root = readdirSync('crds').filter((f) => f.endsWith('.yaml'));
  const chart = readdirSync(join(CHART, 'crds')).filter((f) => f.endsWith('.yaml'));
  expect(chart.sort()).toEqual(root.sort());
  for (const f of root) {
    expect({
      f,
      same: readFileSync(join(CHART, 'crds', f), 'utf8') === readFileSync(join('crds', f), 'utf8'),
    }).toEqual({ f, same: true });
  }
});

it('manifests/install.yaml is what `make manifests` renders now, and the API server accepts it', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'sibyl-manifests-')), 'install.yaml');
  const r = await run('make', ['-s', 'manifests', `INSTALL_YAML=${out}`]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const committed = readFileSync('manifests/install.yaml', 'utf8');
  expect(committed === readFileSync(out, 'utf8') ? 'up to date' : 'stale: run `make manifests`').toBe(
    'up to date',
  );

  const objs = parseObjects(committed);
  expect(objs.filter((o) => o.kind === 'CustomResourceDefinition')).toHaveLength(2);
  expect(objs.some((o) => o.kind === 'Secret')).toBe(false); // no committed private key
  // The file creates its Namespace; a dry run cannot, so make it first (it may exist from a previous file).
  await kubectl(['create', 'namespace', 'sibyl-system']);
  const rest = objs.filter((o) => o.kind !== 'Namespace');
  await kubectlOk(
    ['apply', '--dry-run=server', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rest }),
  );
});
