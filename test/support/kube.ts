import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';

/** Helpers for integration tests against the real control plane that global-setup started. */

export function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  const file = process.env.KUBECONFIG;
  if (!file)
    throw new Error('KUBECONFIG is not set: integration tests run under the integration jest project');
  kc.loadFromFile(file);
  return kc;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real kubectl (built by hack/k8s-tools.sh, first on PATH) with optional stdin. The
 * environment is passed explicitly: jest gives test code a copy of process.env that child processes
 * would not otherwise see.
 */
export function kubectl(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const opts = { encoding: 'utf8' as const, timeout: 60_000, env: { ...process.env } };
    const child = execFile('kubectl', args, opts, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/**
 * A namespace of the test file's own. Namespaces stay Terminating without a controller-manager, so
 * each name is unique and nothing is reused.
 */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels: { 'sibyl.dev/test': prefix } } } });
  return name;
}

export async function deleteNamespace(name: string): Promise<void> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.deleteNamespace({ name });
}
