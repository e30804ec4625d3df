import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

/**
 * Starts, once per test run, what the integration tests talk to: a real control plane (etcd +
 * kube-apiserver via hack/local-cluster.sh) with sibyl's CRDs applied, and a real Redis server.
 * Workers inherit the environment set here (KUBECONFIG, PATH, SIBYL_TEST_REDIS_URL).
 * Jest loads this file outside its module mapper, so it imports no relative modules.
 */
export default async function globalSetup(): Promise<void> {
  const root = process.cwd();
  const work = mkdtempSync(join(tmpdir(), 'sibyl-test-'));
  process.env.SIBYL_TEST_WORK = work;
  process.env.SIBYL_CLUSTER_DIR = join(work, 'cluster');
  const t0 = Date.now();
  const out = execFileSync(join(root, 'hack/local-cluster.sh'), ['up'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for (const line of out.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line.trim());
    if (m) process.env[m[1] as string] = (m[2] as string).replace('$PATH', process.env.PATH ?? '');
  }
  const controlPlaneMs = Date.now() - t0;
  execFileSync('kubectl', ['apply', '-f', join(root, 'crds')], { stdio: 'ignore' });
  execFileSync('kubectl', ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all'], {
    stdio: 'ignore',
  });

  const port = await freePort();
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
      detached: false,
    },
  );
  redis.on('error', (e) => {
    throw new Error(`redis-server failed to start (run hack/system-deps.sh): ${e.message}`);
  });
  process.env.SIBYL_TEST_REDIS_URL = `redis://127.0.0.1:${port}`;
  process.env.SIBYL_TEST_REDIS_PORT = String(port);
  for (let i = 0; ; i++) {
    const pong = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim();
    if (pong === 'PONG') break;
    if (i > 100) throw new Error(`redis-server on ${port} did not answer PING in 10s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(join(work, 'redis.pid'), String(redis.pid));
  console.log(`\n[setup] control plane up in ${controlPlaneMs} ms; redis on ${port}; state in ${work}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port')),
      );
    });
  });
}
