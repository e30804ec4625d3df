import { readdirSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { createNamespace, kubeConfig, kubectl, kubectlOk } from '../support/kube.js';
import { crds } from '../../src/api/crd.js';

/** The CRDs against a real kube-apiserver: established, samples accepted, bad objects refused clearly. */

let ns: string;
beforeAll(async () => {
  ns = await createNamespace('crds');
});

const pool = (spec: object, name = 'bad') => ({
  apiVersion: 'sibyl.dev/v1alpha1',
  kind: 'BackendPool',
  metadata: { name },
  spec,
});
const tier = (spec: object) => ({
  apiVersion: 'sibyl.dev/v1alpha1',
  kind: 'CacheTier',
  metadata: { name: 'bad' },
  spec,
});
const svc = { service: { name: 'checkout' }, match: { services: ['shop.Checkout'] } };

it('every CRD is Established with its short names and category', async () => {
  const ext = kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
  for (const c of crds) {
    const got = await ext.readCustomResourceDefinition({ name: c.metadata.name });
    const established = got.status?.conditions?.find((x) => x.type === 'Established');
    expect(established?.status).toBe('True');
    expect(got.spec.names.shortNames).toEqual(c.spec.names.shortNames);
    expect(got.spec.names.categories).toEqual(['sibyl']);
  }
});

it('accepts every sample in manifests/samples', async () => {
  const files = readdirSync('manifests/samples').filter((f) => f.endsWith('.yaml'));
  expect(files.length).toBeGreaterThanOrEqual(3);
  for (const f of files) await kubectlOk(['apply', '-n', ns, '-f', `manifests/samples/${f}`]);
  const names = await kubectlOk(['get', 'sibyl', '-n', ns, '-o', 'name']);
  expect(names.split('\n').filter(Boolean).sort()).toEqual([
    'backendpool.sibyl.dev/checkout',
    'backendpool.sibyl.dev/legacy-search',
    'cachetier.sibyl.dev/catalog-cache',
  ]);
});

it('fills defaults the user left out', async () => {
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify(pool({ ...svc, circuitBreaker: {} }, 'defaults')),
  );
  const got = JSON.parse(await kubectlOk(['get', 'bp', 'defaults', '-n', ns, '-o', 'json'])) as {
    spec: { circuitBreaker: Record<string, unknown> };
  };
  expect(got.spec.circuitBreaker).toEqual({
    failureThreshold: 5,
    recoveryTimeout: '30s',
    halfOpenMaxCalls: 3,
    maxEjectionPercent: 50,
  });
});

// [what is wrong, object, a piece of the API server's message that names the problem]
const invalid: Array<[string, object, RegExp]> = [
  [
    'neither service nor endpoints',
    pool({ match: { services: ['a.B'] } }),
    /set exactly one of service .* and endpoints/,
  ],
  [
    'both service and endpoints',
    pool({ ...svc, endpoints: [{ address: '10.0.0.1:80' }] }),
    /set exactly one of service/,
  ],
  [
    'port out of range',
    pool({ ...svc, service: { name: 'x', port: 70000 } }),
    /spec.service.port.*port number from 1 to 65535/,
  ],
  [
    'bad port name',
    pool({ ...svc, service: { name: 'x', port: 'Not_A_Name' } }),
    /spec.service.port.*port name/,
  ],
  [
    'address port out of range',
    pool({ endpoints: [{ address: '10.0.0.1:99999' }], match: svc.match }),
    /address.*port must be from 1 to 65535/,
  ],
  [
    'address without port',
    pool({ endpoints: [{ address: '10.0.0.1' }], match: svc.match }),
    // …and only that: no CEL "type conversion error" from the port rule.
    /^(?![\s\S]*type conversion)[\s\S]*spec.endpoints\[0\].address.*should match/,
  ],
  [
    'empty match',
    pool({ service: { name: 'x' }, match: {} }),
    /match must name at least one gRPC service or method/,
  ],
  [
    'method not /pkg.Svc/Method',
    pool({ ...svc, match: { methods: ['Checkout.Get'] } }),
    /spec.match.methods\[0\].*should match/,
  ],
  [
    'duplicate service',
    pool({ ...svc, match: { services: ['a.B', 'a.B'] } }),
    /spec.match.services\[1\]: Duplicate value/,
  ],
  [
    'duplicate endpoint',
    pool({ endpoints: [{ address: '10.0.0.1:80' }, { address: '10.0.0.1:80' }], match: svc.match }),
    /spec.endpoints\[1\]: Duplicate value/,
  ],
  [
    'unknown policy',
    pool({ ...svc, balancing: { policy: 'Random' } }),
    /spec.balancing.policy: Unsupported value: "Random"/,
  ],
  [
    'exploration out of range',
    pool({ ...svc, balancing: { exploration: 0.9 } }),
    /spec.balancing.exploration.*less than or equal to 0.5/,
  ],
  [
    'bad duration',
    pool({ ...svc, circuitBreaker: { recoveryTimeout: '5 minutes' } }),
    /recoveryTimeout.*must be a duration such as 500ms/,
  ],
  [
    'duration too long',
    pool({ ...svc, circuitBreaker: { recoveryTimeout: '2h' } }),
    /recoveryTimeout.*must be at most 1h/,
  ],
  [
    'zero failure threshold',
    pool({ ...svc, circuitBreaker: { failureThreshold: 0 } }),
    /failureThreshold.*greater than or equal to 1/,
  ],
  [
    'limits out of order',
    pool({ ...svc, concurrency: { minLimit: 50, initialLimit: 10 } }),
    /minLimit must not exceed initialLimit/,
  ],
  [
    'initial above max',
    pool({ ...svc, concurrency: { initialLimit: 600, maxLimit: 500 } }),
    /initialLimit must not exceed maxLimit/,
  ],
  [
    'unknown limit algorithm',
    pool({ ...svc, concurrency: { algorithm: 'BBR' } }),
    /spec.concurrency.algorithm: Unsupported value/,
  ],
  [
    'unknown retry code',
    pool({ ...svc, retries: { retryOn: ['teapot'] } }),
    /spec.retries.retryOn\[0\]: Unsupported value/,
  ],
  [
    'hedging without idempotent methods',
    pool({ ...svc, hedging: { enabled: true } }),
    /hedging needs idempotentMethods/,
  ],
  [
    'bad hedge delay',
    pool({ ...svc, idempotentMethods: ['/a.B/C'], hedging: { delay: 'soon' } }),
    /must be Predicted or a duration/,
  ],
  [
    'empty service name',
    pool({ service: { name: '' }, match: svc.match }),
    /spec.service.name.*at least 1 chars? long/,
  ],
  [
    'cache tier with both pools and selector',
    tier({ pools: ['a'], poolSelector: {}, methods: [{ method: '/a.B/C' }] }),
    /exactly one of pools .* and poolSelector/,
  ],
  ['cache tier without methods', tier({ pools: ['a'], methods: [] }), /spec.methods.*at least 1 items?/],
  [
    'negative cache size',
    tier({ pools: ['a'], methods: [{ method: '/a.B/C' }], l1: { maxBytes: '-5Mi' } }),
    /l1.maxBytes.*positive number of bytes or a quantity/,
  ],
  [
    'redis with neither url nor secret',
    tier({ pools: ['a'], methods: [{ method: '/a.B/C' }], l2: { redis: { mode: 'Standalone' } } }),
    /exactly one of url and secretRef/,
  ],
  [
    'sentinel without its name',
    tier({
      pools: ['a'],
      methods: [{ method: '/a.B/C' }],
      l2: { redis: { url: 'redis://r:26379', mode: 'Sentinel' } },
    }),
    /Sentinel mode needs sentinelName/,
  ],
  [
    'relative disk path',
    tier({ pools: ['a'], methods: [{ method: '/a.B/C' }], l3: { path: 'cache' } }),
    /spec.l3.path.*should match '\^\/'/,
  ],
];

describe('the API server refuses invalid objects with a message that names the problem', () => {
  it('has at least twelve cases', () => expect(invalid.length).toBeGreaterThanOrEqual(12));
  it.each(invalid)('%s', async (_what, obj, message) => {
    const r = await kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(obj));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
  it('stored none of them', async () => {
    const r = await kubectl(['get', 'bp,ct', 'bad', '-n', ns]);
    expect(r.stderr).toMatch(/NotFound|not found/);
  });
});

it('kubectl get bp shows the printer columns', async () => {
  const out = await kubectlOk(['get', 'bp', '-n', ns]);
  const header = (out.split('\n')[0] ?? '').split(/\s{2,}/);
  expect(header).toEqual(['NAME', 'POLICY', 'ENDPOINTS', 'OPEN BREAKERS', 'P99', 'READY', 'AGE']);
  const wide = await kubectlOk(['get', 'bp', '-n', ns, '-o', 'wide']);
  expect(wide.split('\n')[0]).toContain('BEST');
  const ct = await kubectlOk(['get', 'ct', '-n', ns]);
  expect((ct.split('\n')[0] ?? '').split(/\s{2,}/)).toEqual([
    'NAME',
    'POOLS',
    'HIT RATIO',
    'ENTRIES',
    'READY',
    'AGE',
  ]);
});

it('a spec change raises metadata.generation and a status write does not', async () => {
  const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  const ref = {
    group: 'sibyl.dev',
    version: 'v1alpha1',
    namespace: ns,
    plural: 'backendpools',
    name: 'generation',
  };
  await api.createNamespacedCustomObject({ ...ref, body: pool(svc, 'generation') });
  const gen = async () =>
    ((await api.getNamespacedCustomObject(ref)) as { metadata: { generation: number } }).metadata.generation;
  const g0 = await gen();
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  await api.patchNamespacedCustomObjectStatus(
    { ...ref, body: { status: { policy: 'PeakEwma', openBreakers: 1 } } },
    merge,
  );
  expect(await gen()).toBe(g0);
  await api.patchNamespacedCustomObject(
    { ...ref, body: { spec: { balancing: { policy: 'RoundRobin' } } } },
    merge,
  );
  expect(await gen()).toBe(g0 + 1);
  const out = await kubectlOk(['get', 'bp', 'generation', '-n', ns]);
  expect(out).toMatch(/generation\s+PeakEwma\s+1\s/);
});
