import * as k8s from '@kubernetes/client-node';
import { kubeConfig } from './kube.js';

/** A ServiceAccount token from the TokenRequest API, and a kubeconfig that authenticates with it only. */
export async function serviceAccountKubeConfig(ns: string, sa: string): Promise<k8s.KubeConfig> {
  const admin = kubeConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  const cluster = admin.getCurrentCluster() as k8s.Cluster;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: sa, token }],
    contexts: [{ name: sa, cluster: cluster.name, user: sa }],
    currentContext: sa,
  });
  return kc;
}

/**
 * A ServiceAccount `name` (default "router") in `ns` and a token for it from the TokenRequest API,
 * as a router presents to the operator's control API.
 */
export async function routerAccountToken(ns: string, name = 'router'): Promise<string> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  const tr = await core.createNamespacedServiceAccountToken({
    name,
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  return token;
}
