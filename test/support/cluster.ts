import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';

/**
 * A control plane of a test file's own (hack/local-cluster.sh with its own state folder), for tests
 * that stop or restart the kube-apiserver: the shared one from global-setup serves every other test
 * file running meanwhile. test/integration/operator/apiserver-restart.test.ts runs one the same way.
 */
export interface PrivateCluster {
  readonly dir: string;
  readonly kubeconfig: string;
  /**
   * Runs hack/local-cluster.sh CMD on this cluster (up, down, stop-apiserver, start-apiserver, ...),
   * without blocking the event loop (traffic the test drives meanwhile keeps flowing).
   */
  run(cmd: string): Promise<string>;
}

export function privateCluster(name: string): PrivateCluster {
  const dir = join(process.env.SIBYL_TEST_WORK ?? '/tmp', `${name}-cluster`);
  return {
    dir,
    kubeconfig: join(dir, 'kubeconfig'),
    run: async (cmd) =>
      (
        await promisify(execFile)('hack/local-cluster.sh', [cmd], {
          encoding: 'utf8',
          env: { ...process.env, SIBYL_CLUSTER_DIR: dir },
        })
      ).stdout,
  };
}
