import type * as k8s from '@kubernetes/client-node';
import { Operator, type OperatorOptions } from '../../src/operator/operator.js';
import { makeLogger } from '../../src/util/log.js';
import { kubeConfig } from './kube.js';

/** An operator in this process against the test control plane, watching one namespace. */
export async function startOperator(
  ns: string,
  extra: Partial<OperatorOptions> & { kc?: k8s.KubeConfig } = {},
): Promise<Operator> {
  const op = new Operator({
    kc: extra.kc ?? kubeConfig(),
    log: makeLogger('operator', process.env.SIBYL_TEST_LOG_LEVEL ?? 'silent'),
    namespace: ns,
    statusIntervalMs: 300,
    ...extra,
  });
  await op.start();
  return op;
}
