import * as k8s from '@kubernetes/client-node';
import { kubeConfig } from './kube.js';

/**
 * Services and EndpointSlices for backends on loopback. The API server refuses 127.0.0.0/8 in IPv4
 * slices, so each backend gets an FQDN slice of its own carrying its port, named NAME.localhost
 * (RFC 6761: sibyl's dialers resolve *.localhost to 127.0.0.1).
 */
export async function createService(
  ns: string,
  name: string,
  ports: Array<{ name: string; port: number }> = [{ name: 'grpc', port: 50051 }],
) {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedService({
    namespace: ns,
    body: { metadata: { name }, spec: { ports: ports.map((p) => ({ ...p, protocol: 'TCP' })) } },
  });
}

export interface SliceEndpoint {
  port: number;
  pod?: string;
  ready?: boolean;
  host?: string;
}

/** One FQDN slice per endpoint, named SERVICE-PORT, labelled for the Service. */
export async function putSlices(
  ns: string,
  service: string,
  eps: SliceEndpoint[],
  portName = 'grpc',
): Promise<void> {
  const api = kubeConfig().makeApiClient(k8s.DiscoveryV1Api);
  for (const e of eps) {
    const name = `${service}-${e.port}`;
    const body: k8s.V1EndpointSlice = {
      metadata: { name, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'FQDN',
      ports: [{ name: portName, port: e.port, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: [e.host ?? `${e.pod ?? `backend-${e.port}`}.localhost`],
          conditions: { ready: e.ready ?? true },
          ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod, namespace: ns } } : {}),
        },
      ],
    };
    try {
      await api.replaceNamespacedEndpointSlice({ name, namespace: ns, body });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await api.createNamespacedEndpointSlice({ namespace: ns, body });
    }
  }
}

export async function deleteSlice(ns: string, service: string, port: number): Promise<void> {
  const api = kubeConfig().makeApiClient(k8s.DiscoveryV1Api);
  await api.deleteNamespacedEndpointSlice({ name: `${service}-${port}`, namespace: ns });
}

const ref = (ns: string, name: string) => ({
  group: 'sibyl.dev',
  version: 'v1alpha1',
  namespace: ns,
  plural: 'backendpools',
  name,
});

export async function createPool(ns: string, name: string, spec: object): Promise<void> {
  const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await api.createNamespacedCustomObject({
    ...ref(ns, name),
    body: { apiVersion: 'sibyl.dev/v1alpha1', kind: 'BackendPool', metadata: { name }, spec },
  });
}

export interface PoolView {
  metadata: { name: string; generation: number; uid: string; resourceVersion: string };
  status?: {
    observedGeneration?: number;
    conditions?: Array<{
      type: string;
      status: string;
      reason: string;
      message: string;
      lastTransitionTime: string;
    }>;
    endpoints?: Array<{ address: string; pod?: string; ready: boolean }>;
    endpointsSummary?: string;
    decision?: string;
    policy?: string;
  };
}

export async function getPool(ns: string, name: string): Promise<PoolView> {
  const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  return (await api.getNamespacedCustomObject(ref(ns, name))) as PoolView;
}

export async function deletePool(ns: string, name: string): Promise<void> {
  const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await api.deleteNamespacedCustomObject(ref(ns, name));
}

export async function listEvents(ns: string, name: string): Promise<k8s.CoreV1Event[]> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}
