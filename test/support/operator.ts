import type * as k8s from '@kubernetes/client-node';
import { Operator, type OperatorOptions } from '../../src/operator/operator.js';
import { makeLogger } from '../../src/util/log.js';
import { kubeConfig } from './kube.js';

/** An operator in this process against the test control plane, watching one namespace. */
/**
 * Operators this test file started and may not have stopped (a test that fails before its own
 * `stop()`): stopped after the file, so no informer or lease timer outlives it and keeps jest from
 * exiting. Stopping an operator twice is harmless.
 */
const started = new Set<Operator>();
afterAll(async () => {
  for (const op of started) {
    try {
      await op.stop();
    } catch (e) {
      console.warn(`[test] stopping a leftover operator: ${(e as Error).message}`);
    }
  }
  started.clear();
});

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
  started.add(op);
  await op.start();
  return op;
}
