import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, VERSION } from '../api/crd.js';
import type { BackendPool } from '../api/backendpool.js';
import type { CacheTier } from '../api/cachetier.js';
import { Informer, type InformerOptions } from './informer.js';
import type { IndexFunc } from './store.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface InformerSettings {
  namespace?: string; // one namespace, or all when absent
  relistMs?: number;
  silenceMs?: number;
  onRestart?: (informer: string, reason: string) => void;
  log: Logger;
}

type Common<T extends KubernetesObject> = Pick<
  InformerOptions<T>,
  'relistMs' | 'silenceMs' | 'log' | 'name'
> & {
  onRestart?: (reason: string) => void;
};

function common<T extends KubernetesObject>(name: string, s: InformerSettings): Common<T> {
  return {
    name,
    log: s.log,
    ...(s.relistMs !== undefined ? { relistMs: s.relistMs } : {}),
    ...(s.silenceMs !== undefined ? { silenceMs: s.silenceMs } : {}),
    onRestart: (reason) => s.onRestart?.(name, reason),
  };
}

const nsPath = (prefix: string, plural: string, ns?: string) =>
  ns ? `${prefix}/namespaces/${ns}/${plural}` : `${prefix}/${plural}`;

function customInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  plural: string,
  s: InformerSettings,
  indexers: Record<string, IndexFunc<T>>,
): Informer<T> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const list = async () =>
    (s.namespace
      ? await api.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: s.namespace,
          plural,
        })
      : await api.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
        })) as KubernetesListObject<T>;
  return new Informer<T>(kc, {
    ...common<T>(plural, s),
    path: nsPath(`/apis/${GROUP}/${VERSION}`, plural, s.namespace),
    list,
    indexers,
  });
}

/** BackendPools, indexed by the Service (ns/name) and the CacheTier (ns/name) they name. */
export function poolInformer(kc: KubeConfig, s: InformerSettings): Informer<BackendPool & KubernetesObject> {
  return customInformer<BackendPool & KubernetesObject>(kc, 'backendpools', s, {
    service: (p) => (p.spec.service ? [`${p.metadata.namespace}/${p.spec.service.name}`] : []),
    tier: (p) => (p.spec.cacheTierRef ? [`${p.metadata.namespace}/${p.spec.cacheTierRef.name}`] : []),
  });
}

/** CacheTiers, indexed by each pool (ns/name) they list by name. */
export function tierInformer(kc: KubeConfig, s: InformerSettings): Informer<CacheTier & KubernetesObject> {
  return customInformer<CacheTier & KubernetesObject>(kc, 'cachetiers', s, {
    pool: (t) => (t.spec.pools ?? []).map((p) => `${t.metadata.namespace}/${p}`),
  });
}

export function serviceInformer(kc: KubeConfig, s: InformerSettings): Informer<V1Service> {
  const api = kc.makeApiClient(CoreV1Api);
  const list = () =>
    s.namespace ? api.listNamespacedService({ namespace: s.namespace }) : api.listServiceForAllNamespaces();
  return new Informer<V1Service>(kc, {
    ...common<V1Service>('services', s),
    path: nsPath('/api/v1', 'services', s.namespace),
    list,
  });
}

/** EndpointSlices that belong to a Service, indexed by it (ns/name) so a pool finds them without a LIST. */
export function sliceInformer(kc: KubeConfig, s: InformerSettings): Informer<V1EndpointSlice> {
  const api = kc.makeApiClient(DiscoveryV1Api);
  const labelSelector = SERVICE_NAME_LABEL;
  const list = () =>
    s.namespace
      ? api.listNamespacedEndpointSlice({ namespace: s.namespace, labelSelector })
      : api.listEndpointSliceForAllNamespaces({ labelSelector });
  return new Informer<V1EndpointSlice>(kc, {
    ...common<V1EndpointSlice>('endpointslices', s),
    path: nsPath('/apis/discovery.k8s.io/v1', 'endpointslices', s.namespace),
    list,
    labelSelector,
    indexers: {
      service: (es) => {
        const svc = es.metadata?.labels?.[SERVICE_NAME_LABEL];
        return svc ? [`${es.metadata?.namespace}/${svc}`] : [];
      },
    },
  });
}

export function podInformer(kc: KubeConfig, s: InformerSettings): Informer<V1Pod> {
  const api = kc.makeApiClient(CoreV1Api);
  const list = () =>
    s.namespace ? api.listNamespacedPod({ namespace: s.namespace }) : api.listPodForAllNamespaces();
  return new Informer<V1Pod>(kc, {
    ...common<V1Pod>('pods', s),
    path: nsPath('/api/v1', 'pods', s.namespace),
    list,
  });
}
