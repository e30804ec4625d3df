import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { envoyBootstrap, grpcBootstrap } from '../../../src/xds/bootstrap.js';
import { makeServingCert } from '../../support/tls.js';
import { CHART, find, helm, parseObjects, run, type Obj } from './helm.js';

/** The chart's two data planes, dataPlane: envoy (the default) and dataPlane: sibyl, as rendered. */

const render = async (...set: string[]) =>
  parseObjects(
    await helm(['template', 's', CHART, '--namespace', 'sibyl-system', ...set.flatMap((v) => ['--set', v])]),
  );

type Container = {
  image: string;
  command?: string[];
  args: string[];
  readinessProbe?: { tcpSocket?: { port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  volumeMounts: { name: string; mountPath: string }[];
};
type Pod = {
  serviceAccountName: string;
  automountServiceAccountToken: boolean;
  containers: Container[];
  volumes: Array<{
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string };
    projected?: { sources: Array<{ serviceAccountToken?: { path: string; expirationSeconds: number } }> };
  }>;
};
const podOf = (o: Obj) => (o as Obj & { spec: { template: { spec: Pod } } }).spec.template.spec;
const operatorArgs = (objs: Obj[]) => podOf(find(objs, 'Deployment', 's-operator')).containers[0]?.args;
const configData = (objs: Obj[], name: string) =>
  (find(objs, 'ConfigMap', name) as Obj & { data: Record<string, string> }).data;

it('dataPlane: envoy (the default) runs the pinned official Envoy with an HPA, a PDB, its own allowed account, and no router', async () => {
  const objs = await render();
  expect(objs.filter((o) => o.metadata.name === 's-router')).toEqual([]);
  const pod = podOf(find(objs, 'Deployment', 's-envoy'));
  const c = pod.containers[0] as Container;
  expect(c.image).toBe('envoyproxy/envoy:v1.40.0');
  expect(c.command).toEqual(['envoy']);
  expect(c.args).toEqual(
    expect.arrayContaining([
      '--config-path=/etc/envoy/envoy.yaml',
      '--service-node=$(POD_NAME)',
      '--disable-hot-restart',
    ]),
  );
  // Ready once the operator's listener is up; alive while its admin answers /ready.
  expect(c.readinessProbe?.tcpSocket?.port).toBe('grpc');
  expect(c.livenessProbe?.httpGet).toEqual({ path: '/ready', port: 'envoy-stats' });
  expect(pod.serviceAccountName).toBe('sibyl-envoy');
  expect(pod.automountServiceAccountToken).toBe(false);
  const token = pod.volumes.find((v) => v.name === 'token')?.projected?.sources[0]?.serviceAccountToken;
  expect(token).toEqual({ path: 'token', expirationSeconds: 3607 });
  expect(pod.volumes.find((v) => v.name === 'control-ca')?.secret?.secretName).toBe('s-control-tls');
  expect(pod.volumes.find((v) => v.name === 'bootstrap')?.configMap?.name).toBe('s-envoy');
  expect(operatorArgs(objs)).toContain('--allowed-routers=sibyl-system/sibyl-envoy');
  find(objs, 'ServiceAccount', 'sibyl-envoy');
  find(objs, 'Service', 's-envoy');
  expect(find(objs, 'HorizontalPodAutoscaler', 's-envoy')).toMatchObject({
    spec: { scaleTargetRef: { kind: 'Deployment', name: 's-envoy' }, minReplicas: 2 },
  });
  expect(find(objs, 'PodDisruptionBudget', 's-envoy')).toMatchObject({ spec: { maxUnavailable: 1 } });
  // The control port admits the Envoys.
  const np = find(objs, 'NetworkPolicy', 's-operator') as Obj & {
    spec: { ingress: Array<{ from?: Array<{ podSelector: { matchLabels: Record<string, string> } }> }> };
  };
  expect(np.spec.ingress[0]?.from?.[0]?.podSelector.matchLabels['app.kubernetes.io/component']).toBe('envoy');
});

it('dataPlane: sibyl runs the routers as before, and no Envoy', async () => {
  const objs = await render('dataPlane=sibyl');
  expect(objs.filter((o) => o.metadata.name === 's-envoy' || o.metadata.name === 'sibyl-envoy')).toEqual([]);
  find(objs, 'Deployment', 's-router');
  find(objs, 'PodDisruptionBudget', 's-router');
  expect(operatorArgs(objs)).toContain('--allowed-routers=sibyl-system/sibyl-router');
  // The proxyless bootstrap is there with either data plane.
  find(objs, 'ConfigMap', 's-xds-bootstrap');
});

it('dataPlane: envoy with router.withEnvoy runs routers beside Envoy, advertising their pod address, both accounts allowed', async () => {
  const objs = await render('router.withEnvoy=true');
  find(objs, 'Deployment', 's-envoy');
  const pod = podOf(find(objs, 'Deployment', 's-router'));
  const c = pod.containers[0] as Container & { env?: Array<{ name: string; valueFrom?: unknown }> };
  expect(c.args).toContain('--advertise=$(POD_IP):8080');
  expect(c.env).toEqual([{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }]);
  expect(operatorArgs(objs)).toContain(
    '--allowed-routers=sibyl-system/sibyl-router,sibyl-system/sibyl-envoy',
  );
  const np = find(objs, 'NetworkPolicy', 's-operator') as Obj & {
    spec: { ingress: Array<{ from?: Array<{ podSelector: { matchLabels: Record<string, string> } }> }> };
  };
  const admitted = np.spec.ingress[0]?.from?.map(
    (f) => f.podSelector.matchLabels['app.kubernetes.io/component'],
  );
  expect(admitted).toEqual(['envoy', 'router']);
  // Routers alone (dataPlane: sibyl) advertise nothing: clients call them.
  const alone = podOf(find(await render('dataPlane=sibyl'), 'Deployment', 's-router')).containers[0];
  expect(alone?.args.some((a) => a.startsWith('--advertise'))).toBe(false);
});

it("Envoy's bootstrap is what sibyl xds-bootstrap --kind envoy prints, and envoy --mode validate accepts it", async () => {
  const options = {
    server: 's-operator.sibyl-system.svc:9443',
    caFile: '/etc/sibyl/control-ca/ca.crt',
    tokenFile: '/var/run/secrets/sibyl/token/token',
    nodeId: 'sibyl-envoy',
    listen: '0.0.0.0:8080',
    admin: '127.0.0.1:9901',
    health: '0.0.0.0:9902',
  };
  const text = configData(await render(), 's-envoy')['envoy.yaml'] as string;
  expect(parse(text)).toEqual(envoyBootstrap({ ...options, fleet: 's-envoy' }));
  const scoped = configData(
    await render('envoy.watchNamespace=shop', 'envoy.fleet=edge', 'envoy.port=10000'),
    's-envoy',
  )['envoy.yaml'] as string;
  expect(parse(scoped)).toEqual(
    envoyBootstrap({ ...options, fleet: 'edge', namespace: 'shop', listen: '0.0.0.0:10000' }),
  );
  // Envoy reads the files it names while it validates: real ones in place of the pod's.
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-envoy-chart-'));
  writeFileSync(join(dir, 'token'), 'not-a-real-token');
  const file = join(dir, 'envoy.yaml');
  writeFileSync(
    file,
    text
      .replaceAll(options.caFile, join(makeServingCert().dir, 'ca.crt'))
      .replaceAll(options.tokenFile, join(dir, 'token')),
  );
  const out = execFileSync('envoy', ['--mode', 'validate', '-c', file, '--base-id', '321'], {
    encoding: 'utf8',
  });
  expect(out).toMatch(/configuration '.*' OK/);
});

it('the proxyless ConfigMap holds what sibyl xds-bootstrap --kind grpc prints, for GRPC_XDS_BOOTSTRAP_CONFIG', async () => {
  for (const plane of ['envoy', 'sibyl']) {
    const data = configData(await render(`dataPlane=${plane}`), 's-xds-bootstrap');
    expect(JSON.parse(data['bootstrap.json'] as string)).toEqual(
      grpcBootstrap({
        server: 's-operator.sibyl-system.svc:9443',
        caFile: '/etc/sibyl/control-ca/ca.crt',
        tokenFile: '/var/run/secrets/sibyl/token/token',
        nodeId: 'sibyl-proxyless',
      }),
    );
  }
});

it('refuses an unknown data plane and an Envoy image that is not pinned', async () => {
  const plane = await run('helm', ['template', 's', CHART, '--set', 'dataPlane=istio']);
  expect(plane.code).not.toBe(0);
  expect(plane.stderr).toMatch(/dataPlane/);
  const latest = await run('helm', ['template', 's', CHART, '--set', 'envoy.image.tag=latest']);
  expect(latest.code).not.toBe(0);
  expect(latest.stderr).toMatch(/envoy\/image\/tag/);
});
