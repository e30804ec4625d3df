import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;

/** The local control plane of hack/local-cluster.sh, in a folder of the demo's own. */
export class LocalCluster {
  env: NodeJS.ProcessEnv = { ...process.env };

  constructor(readonly dir: string) {}

  up(): void {
    const out = execFileSync(join(ROOT, 'hack/local-cluster.sh'), ['up'], {
      encoding: 'utf8',
      env: { ...process.env, SIBYL_CLUSTER_DIR: this.dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    for (const line of out.split('\n')) {
      const m = /^export (\w+)=(.*)$/.exec(line.trim());
      if (m) this.env[m[1] as string] = (m[2] as string).replace('$PATH', process.env.PATH ?? '');
    }
    process.env.KUBECONFIG = this.env.KUBECONFIG;
    process.env.PATH = this.env.PATH;
  }

  down(): void {
    execFileSync(join(ROOT, 'hack/local-cluster.sh'), ['down'], {
      env: { ...process.env, SIBYL_CLUSTER_DIR: this.dir },
      stdio: 'inherit',
    });
  }

  get exports(): string {
    return `export KUBECONFIG=${this.env.KUBECONFIG}\nexport PATH=${(this.env.PATH ?? '').split(':')[0]}:$PATH`;
  }

  kubectl(args: string[], input?: string): string {
    return execFileSync('kubectl', args, {
      encoding: 'utf8',
      env: this.env,
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Retries a kubectl call for a short while (a CRD is served a moment after it is Established). */
  async kubectlRetry(args: string[], input?: string, tries = 50): Promise<string> {
    for (let i = 0; ; i++) {
      try {
        return this.kubectl(args, input);
      } catch (e) {
        if (i >= tries) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
