import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../util/errors.js';
import { SKIP_FIRST, summarizeGhz, type GhzReport, type RunResult } from './run-result.js';

/** ghz against the demo service's Echo, as `sibyl bench proxy` runs it. */

const HERE = fileURLToPath(import.meta.url);
/** The repository (or installed package) root: this file is <root>/{src,dist}/tools/bench/ghz.{ts,js}. */
const ROOT = path.resolve(path.dirname(HERE), '..', '..', '..');
export const PROTO = path.join(ROOT, 'proto', 'sibyl', 'demo', 'v1', 'demo.proto');

export interface GhzLoad {
  /** ghz -c: calls in flight. */
  concurrency: number;
  /** ghz --connections. */
  connections: number;
  /** --rps, or undefined for as fast as it goes. */
  rps: number | undefined;
  seconds: number;
}

function execTool(bin: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(bin)} failed: ${errorMessage(err)}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** One ghz run at `address`; its report is read from a file in `dir`. */
export async function ghzRun(
  bin: string,
  dir: string,
  target: string,
  address: string,
  load: GhzLoad,
): Promise<RunResult> {
  const out = path.join(dir, `ghz-${Date.now()}.json`);
  const args = [
    '--proto',
    PROTO,
    '--call',
    'sibyl.demo.v1.Demo/Echo',
    '-d',
    '{}',
    '--insecure',
    '-O',
    'json',
    '-o',
    out,
    '--skipFirst',
    String(SKIP_FIRST),
    '-z',
    `${load.seconds}s`,
    '-c',
    String(load.concurrency),
    '--connections',
    String(load.connections),
    ...(load.rps !== undefined ? ['--rps', String(load.rps)] : []),
    address,
  ];
  await execTool(bin, args, (load.seconds + 60) * 1000);
  const report = JSON.parse(await readFile(out, 'utf8')) as GhzReport;
  await rm(out, { force: true });
  return summarizeGhz(target, report, load.rps);
}

/** The sibyl-tools cache (hack/k8s-tools.sh): $SIBYL_TOOLS_DIR or ~/.cache/sibyl-tools. */
function toolsCache(): string {
  return (
    process.env.SIBYL_TOOLS_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'sibyl-tools')
  );
}

/**
 * A tool binary: the flag, then $ENV, PATH, the sibyl-tools bin dir, its NAME-* version dirs (newest
 * first). An empty flag means "skip": undefined.
 */
export function findTool(name: string, flag: string | undefined, env?: string): string | undefined {
  if (flag !== undefined) return flag === '' ? undefined : flag;
  const candidates: string[] = [];
  const fromEnv = env ? process.env[env] : undefined;
  if (fromEnv) candidates.push(fromEnv);
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) if (d) candidates.push(path.join(d, name));
  const cache = toolsCache();
  candidates.push(path.join(cache, 'bin', name));
  if (existsSync(cache)) {
    const versions = readdirSync(cache)
      .filter((n) => n.startsWith(`${name}-`))
      .map((n) => path.join(cache, n, name))
      .filter((p) => existsSync(p))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    candidates.push(...versions);
  }
  return candidates.find((c) => existsSync(c));
}

/**
 * sibyl-xds-client as hack/k8s-tools.sh built it from this checkout's test/xds/go-client: the cache
 * keys each build by the hash of go.mod, go.sum and the .go files (xds_client_version), and the bin
 * link follows whichever checkout ran the script last, which on a shared machine may be an older one.
 */
export function xdsClientForSources(): string | undefined {
  const src = path.join(ROOT, 'test', 'xds', 'go-client');
  if (!existsSync(src)) return undefined;
  const go = readdirSync(src)
    .filter((n) => n.endsWith('.go'))
    .sort();
  const hash = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', ...go]) hash.update(readFileSync(path.join(src, f)));
  const bin = path.join(
    toolsCache(),
    `sibyl-xds-client-${hash.digest('hex').slice(0, 12)}`,
    'sibyl-xds-client',
  );
  return existsSync(bin) ? bin : undefined;
}
