import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SibylError, errorMessage } from '../../util/errors.js';
import { freePort } from '../../util/net.js';
import { track, waitForPort, type Child } from './processes.js';

/** nginx `grpc_pass` with least_conn over a pool, from hack/nginx's template: the bench's reference proxy. */

const HERE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HERE), '..', '..', '..');
export const NGINX_TEMPLATE = path.join(ROOT, 'hack', 'nginx', 'grpc-least-conn.conf.template');

/** The nginx config: the template (hack/nginx) with its ${...} fields filled. */
export function renderNginxConf(
  template: string,
  v: { prefix: string; port: number; workers: number; backends: string[] },
): string {
  const fields: Record<string, string> = {
    prefix: v.prefix,
    port: String(v.port),
    workers: String(v.workers),
    servers: v.backends.map((b) => `    server ${b} max_fails=0;`).join('\n'),
  };
  return template.replace(/\$\{(\w+)\}/g, (m, k: string) => {
    const f = fields[k];
    if (f === undefined) throw new SibylError('ERR_CONFIG_INVALID', `nginx template: unknown field ${m}`);
    return f;
  });
}

export async function startNginx(
  bin: string,
  dir: string,
  backends: string[],
  workers: number,
): Promise<{ child: Child; listening: string }> {
  const prefix = await mkdtemp(path.join(dir, 'nginx-'));
  const port = await freePort();
  const conf = path.join(prefix, 'nginx.conf');
  const template = await readFile(NGINX_TEMPLATE, 'utf8');
  await writeFile(conf, renderNginxConf(template, { prefix, port, workers, backends }));
  const proc = spawn(bin, ['-p', prefix, '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const child = track('nginx', proc);
  try {
    await waitForPort(port, child);
  } catch (e) {
    const log = existsSync(path.join(prefix, 'error.log'))
      ? readFileSync(path.join(prefix, 'error.log'), 'utf8')
      : '';
    throw new Error(`${errorMessage(e)}\n${log}`);
  }
  return { child, listening: `127.0.0.1:${port}` };
}

/** --nginx PATH ("" skips nginx), else /usr/sbin/nginx, else PATH. */
export function findNginx(flag: string | undefined): string | undefined {
  if (flag !== undefined) return flag === '' ? undefined : flag;
  const candidates = ['/usr/sbin/nginx'];
  for (const d of (process.env.PATH ?? '').split(path.delimiter))
    if (d) candidates.push(path.join(d, 'nginx'));
  return candidates.find((c) => existsSync(c));
}
