import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/crd.js';

/**
 * `sibyl bench scale`'s local control plane (hack/local-cluster.sh) and what it holds: namespace
 * `bench` with K headless Services, each with one EndpointSlice of M FQDN endpoints and a BackendPool,
 * and a watch on the pools' status as a user would read it.
 */
export const ROOT = new URL('../../../', import.meta.url).pathname;
export const NAMESPACE = 'bench';

export function cluster(dir: string, cmd: string): string {
  return execFileSync(join(ROOT, 'hack/local-cluster.sh'), [cmd], {
    encoding: 'utf8',
    env: { ...process.env, SIBYL_CLUSTER_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

/**
 * Pool `name`'s EndpointSlice: `m` endpoints, the first `ready` of them ready. Each endpoint has an IP
 * of its own (10.x.y.z from the pool's number and the endpoint's): data planes take IPs only, and
 * names under .localhost all go to them as 127.0.0.1 (src/xds/endpoints.ts), which would fold a pool's
 * endpoints into one. Nothing dials them.
 */
export function slice(name: string, m: number, ready: number): k8s.V1EndpointSlice {
  const k = Number(/\d+$/.exec(name)?.[0] ?? 0);
  if (m > 254) throw new Error(`at most 254 endpoints per pool (one IPv4 /24 each), not ${m}`);
  return {
    metadata: { name, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
    endpoints: Array.from({ length: m }, (_, j) => ({
      addresses: [`10.${(k >> 8) & 255}.${k & 255}.${j + 1}`],
      conditions: { ready: j < ready },
      targetRef: { kind: 'Pod', name: `${name}-${j}`, namespace: NAMESPACE },
    })),
  };
}

/** The sum of a Prometheus metric's series at 127.0.0.1:port/metrics. */
export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

const list = (custom: k8s.CustomObjectsApi) =>
  custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: NAMESPACE,
    plural: 'backendpools',
  });

/** Applies the CRDs and creates the namespace and, per name, a Service, its slice and a BackendPool. */
export async function createPools(
  kubeconfig: string,
  bin: string,
  names: string[],
  endpoints: number,
): Promise<{ kc: k8s.KubeConfig; disc: k8s.DiscoveryV1Api; custom: k8s.CustomObjectsApi }> {
  const kubectl = (...args: string[]) =>
    execFileSync(join(bin, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], { stdio: 'ignore' });
  kubectl('apply', '-f', join(ROOT, 'crds'));
  kubectl('wait', '--for=condition=Established', 'crd', '--all');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const disc = kc.makeApiClient(k8s.DiscoveryV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  for (let i = 0; ; i++) {
    try {
      await list(custom);
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await pool(names, 16, async (n) => {
    await core.createNamespacedService({
      namespace: NAMESPACE,
      body: { metadata: { name: n }, spec: { clusterIP: 'None', ports: [{ name: 'grpc', port: 50051 }] } },
    });
    await disc.createNamespacedEndpointSlice({ namespace: NAMESPACE, body: slice(n, endpoints, endpoints) });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NAMESPACE,
      plural: 'backendpools',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'BackendPool',
        metadata: { name: n },
        spec: { service: { name: n }, match: { services: [`${NAMESPACE}.${n}`] } },
      },
    });
  });
  return { kc, disc, custom };
}

interface StatusWaiter {
  want: string;
  t0: number;
  done: (ms: number) => void;
  drop: () => void;
}

/** The pools' status as a user watches it: each pool's endpointsSummary, and the time a wanted one first shows. */
export class StatusWatch {
  readonly summaries = new Map<string, string>();
  readonly waiters = new Map<string, StatusWaiter>();
  private finished = false;

  private constructor(private readonly informer: k8s.Informer<k8s.KubernetesObject>) {}

  static async start(kc: k8s.KubeConfig, custom: k8s.CustomObjectsApi): Promise<StatusWatch> {
    const informer = k8s.makeInformer(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${NAMESPACE}/backendpools`,
      () => list(custom) as never,
    );
    const w = new StatusWatch(informer);
    const seen = (obj: { metadata?: { name?: string }; status?: { endpointsSummary?: string } }) => {
      const n = obj.metadata?.name ?? '';
      const s = obj.status?.endpointsSummary ?? '';
      w.summaries.set(n, s);
      const waiter = w.waiters.get(n);
      if (waiter && waiter.want === s) {
        w.waiters.delete(n);
        waiter.done(performance.now() - waiter.t0);
      }
    };
    informer.on('add', seen as never);
    informer.on('update', seen as never);
    informer.on('error', () => setTimeout(() => w.finished || void informer.start(), 500));
    await informer.start();
    return w;
  }

  async stop(): Promise<void> {
    this.finished = true;
    await this.informer.stop();
  }
}
