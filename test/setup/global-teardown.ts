import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export default async function globalTeardown(): Promise<void> {
  const work = process.env.SIBYL_TEST_WORK;
  if (!work) return;
  try {
    process.kill(Number(readFileSync(join(work, 'redis.pid'), 'utf8')), 'SIGTERM');
  } catch (e) {
    console.warn(`[teardown] redis already gone: ${(e as Error).message}`);
  }
  execFileSync(join(process.cwd(), 'hack/local-cluster.sh'), ['down'], { stdio: 'inherit' });
  if (!process.env.SIBYL_KEEP_TEST_STATE) rmSync(work, { recursive: true, force: true });
}
