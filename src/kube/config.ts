import { KubeConfig } from '@kubernetes/client-node';

/** --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster ServiceAccount. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}
