import { spawn, execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../util/duration.js';
import { SibylError, errorMessage } from '../../util/errors.js';
import { balancerNames } from '../../balancer/index.js';
import { runPickBench } from './pick.js';
import { startBenchBackend, startRouterWithPools, startSibyl, stop, track, type Child } from './processes.js';
import { freePort } from '../../util/net.js';

/**
 * `sibyl bench proxy` (bench/scenarios/README.md): the router against a direct connection and against nginx
 * `grpc_pass`, under ghz, all on 127.0.0.1. Backends (`sibyl backend`), the router (`sibyl router
 * --config`) and nginx each run as a child process, so the router shares its process with nothing.
 *
 * Measured, each run lasting --duration:
 *   - at a fixed rate (--rps): one backend directly (ghz dials one address), then the router and nginx
 *     in front of a homogeneous pool of --backends; the router's added latency is its p50 and p99 less
 *     the direct ones;
 *   - one call at a time (ghz -c 1, one connection, 200 calls/s): each hop's own cost, no queueing;
 *   - the highest sustained rate (ghz with no --rps, -c --concurrency, --connections), directly and
 *     through each proxy, over the homogeneous pool and over a heterogeneous one (--hetero latencies);
 *   - what one pick costs, every policy (src/tools/bench/pick.ts, in this process; the target is checked
 *     against the slowest).
 * The issue's targets are reported, never asserted: pick ≤ 5 µs, added p50 ≤ 0.3 ms, the router's
 * highest rate ≥ half of nginx's.
 *
 * Each proxy gets 5 s flat out when its pool starts (a fresh Node process is slower until its JIT and
 * heap settle), and each measured run follows a 2 s warm-up run of the same load.
 * Calls/s counts the calls ghz skipped (--skipFirst 100) with the rest, over the whole run; latencies
 * are over the calls after them. Calls still in flight when a run's time is up are cut by
 * ghz closing its connections: counted apart as `cut`, not as errors.
 */
const HELP = `usage: sibyl bench proxy [flags]

The router against a direct connection and nginx grpc_pass (least_conn) under ghz, on 127.0.0.1.
Needs ghz (hack/k8s-tools.sh load) and nginx (Debian's, /usr/sbin/nginx). Build first: npm run build.

  --duration D        length of each measured ghz run (default 10s; 11 runs, each after a 2s warm-up)
  --rps N             the fixed rate for the latency comparison (default 1000)
  --backends N        backends in the homogeneous pool (default 4)
  --latency-ms MS     the homogeneous backends' service time (default 0)
  --hetero LIST       service times of the heterogeneous pool's backends, ms (default 0,1,2,5)
  --concurrency N     ghz -c: calls in flight (default 50)
  --connections N     ghz --connections (default 4)
  --policy NAME       the router's balancing policy (default LeastRequest, like least_conn)
  --nginx-workers N   nginx worker_processes (default 1: the router is one process too)
  --ghz PATH          ghz binary (default: $SIBYL_GHZ, PATH, then the sibyl-tools cache)
  --nginx PATH        nginx binary (default /usr/sbin/nginx, then PATH); "" skips nginx
  --out DIR           write proxy.json and proxy.md there (default bench/results; "" for none)
  --repeat N          rounds of every measurement, interleaved; the median run is reported (default 1)
  --json              print the results as one JSON object`;

export interface RunResult {
  target: string;
  /** The fixed rate asked of ghz, or undefined for "as fast as it goes". */
  rps?: number;
  callsPerSec: number;
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  errors: number;
  /** Calls cut by ghz closing its connections when the run's time was up. */
  cut: number;
  statuses: Record<string, number>;
  /** With --repeat: every run's figures; the result is the median run. */
  runs?: { callsPerSec: number; p50Ms: number; p99Ms: number }[];
}

export interface ProxyBenchResult {
  env: {
    node: string;
    cpus: number;
    ghz: string;
    nginx?: string;
    nginxWorkers: number;
    policy: string;
    durationS: number;
    concurrency: number;
    connections: number;
    backends: number;
    latencyMs: number;
    heteroLatenciesMs: number[];
    repeat: number;
    /** The machine's 1-minute load average around the runs: other work on it shows here. */
    loadAverage: { before: number; after: number };
  };
  pick: { policy: string; endpoints: number; nsPerPick: number; nsPerCall: number }[];
  fixedRate: { rps: number; direct?: RunResult; router: RunResult; nginx?: RunResult; relay?: RunResult };
  addedLatency: {
    router: { p50Ms: number; p99Ms: number };
    nginx?: { p50Ms: number; p99Ms: number };
    /** The bare node:http2 relay (relay.ts): what any proxy on node:http2 adds here. */
    relay?: { p50Ms: number; p99Ms: number };
  };
  /** One call at a time (ghz -c 1, one connection) at a low rate: each hop's own cost, no queueing. */
  oneAtATime: {
    rps: number;
    direct?: RunResult;
    router: RunResult;
    nginx?: RunResult;
    relay?: RunResult;
    added: {
      router: { p50Ms: number; p99Ms: number };
      nginx?: { p50Ms: number; p99Ms: number };
      relay?: { p50Ms: number; p99Ms: number };
    };
  };
  maxRate: {
    homogeneous: { direct?: RunResult; router: RunResult; nginx?: RunResult; relay?: RunResult };
    heterogeneous: { router: RunResult; nginx?: RunResult; relay?: RunResult };
  };
  targets: { name: string; target: string; value: string; met: boolean | undefined }[];
}

interface Options {
  durationS: number;
  rps: number;
  backends: number;
  latencyMs: number;
  hetero: number[];
  concurrency: number;
  connections: number;
  policy: string;
  nginxWorkers: number;
  ghz: string;
  nginx: string | undefined;
  out: string | undefined;
  json: boolean;
  repeat: number;
}

const HERE = fileURLToPath(import.meta.url);
/** The repository (or installed package) root: this file is <root>/{src,dist}/bench/proxy.{ts,js}. */
const ROOT = path.resolve(path.dirname(HERE), '..', '..', '..');
const PROTO = path.join(ROOT, 'proto', 'sibyl', 'demo', 'v1', 'demo.proto');
const RELAY = path.join(path.dirname(HERE), `relay${path.extname(HERE)}`);
const NGINX_TEMPLATE = path.join(ROOT, 'hack', 'nginx', 'grpc-least-conn.conf.template');

// ---------------------------------------------------------------------------------------------------
// Pure parts (unit-tested): ghz's report, nginx's config, the table.

/** ghz -O json, the fields read here (latencies in ns). */
export interface GhzReport {
  count: number;
  total: number;
  average: number;
  rps: number;
  latencyDistribution?: { percentage: number; latency: number }[] | null;
  statusCodeDistribution?: Record<string, number> | null;
  errorDistribution?: Record<string, number> | null;
  options?: { skipFirst?: number };
}

const WARMUP_S = 2;
const SINGLE_RPS = 200;
const POOL_WARMUP_S = 5;
const CUT_AT_END = /use of closed network connection|client connection is closing|context canceled/i;

export function summarizeGhz(target: string, r: GhzReport, rps?: number): RunResult {
  const q = (p: number) =>
    ((r.latencyDistribution ?? []).find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  const statuses = { ...(r.statusCodeDistribution ?? {}) };
  let cut = 0;
  for (const [msg, n] of Object.entries(r.errorDistribution ?? {})) if (CUT_AT_END.test(msg)) cut += n;
  const failed = Object.entries(statuses)
    .filter(([code]) => code !== 'OK')
    .reduce((a, [, n]) => a + n, 0);
  const seconds = r.total / 1e9;
  const skipped = r.options?.skipFirst ?? 0;
  return {
    target,
    ...(rps !== undefined ? { rps } : {}),
    callsPerSec: seconds > 0 ? (r.count + skipped) / seconds : 0,
    count: r.count,
    p50Ms: q(50),
    p90Ms: q(90),
    p99Ms: q(99),
    meanMs: r.average / 1e6,
    errors: Math.max(0, failed - cut),
    cut,
    statuses,
  };
}

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

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

function runRow(label: string[], r: RunResult | undefined): string[] {
  if (!r) return [...label, 'skipped', '', '', '', ''];
  return [...label, f0(r.callsPerSec), f2(r.p50Ms), f2(r.p99Ms), String(r.errors), String(r.cut)];
}

type Added = { p50Ms: number; p99Ms: number };

/** "Added over direct: router p50 +x ms, p99 +y ms; nginx …; relay …" for the hops measured. */
function addedLine(a: { router: Added; nginx?: Added; relay?: Added }): string {
  const part = (name: string, x: Added | undefined) =>
    x ? `${name} p50 +${f2(x.p50Ms)} ms, p99 +${f2(x.p99Ms)} ms` : undefined;
  const parts = [part('router', a.router), part('nginx', a.nginx), part('bare node:http2 relay', a.relay)];
  return `Added over direct: ${parts.filter((x) => x !== undefined).join('; ')}`;
}

export function formatProxyBench(r: ProxyBenchResult): string {
  const e = r.env;
  const out: string[] = [];
  out.push(
    `sibyl bench proxy: load average ${e.loadAverage.before.toFixed(1)} before, ${e.loadAverage.after.toFixed(1)} after` +
      (e.repeat > 1 ? `; median of ${e.repeat} interleaved runs` : ''),
    `${e.backends} backends (${e.latencyMs} ms), heterogeneous pool ${e.heteroLatenciesMs.join('/')} ms; ` +
      `ghz -c ${e.concurrency} --connections ${e.connections}, ${e.durationS}s a run; router policy ${e.policy}; ` +
      `nginx ${e.nginx ?? 'skipped'} (${e.nginxWorkers} worker); ${e.cpus} CPUs, Node ${e.node}, ghz ${e.ghz}`,
    '',
    `At a fixed ${r.fixedRate.rps} calls/s (direct: one backend; proxies: the homogeneous pool)`,
    table(
      ['target', 'calls/s', 'p50 ms', 'p99 ms', 'errors', 'cut'],
      [
        runRow(['direct'], r.fixedRate.direct),
        runRow(['router'], r.fixedRate.router),
        runRow(['nginx'], r.fixedRate.nginx),
        runRow(['relay'], r.fixedRate.relay),
      ],
    ),
    '',
    addedLine(r.addedLatency),
    '',
    `One call at a time (-c 1, one connection) at ${r.oneAtATime.rps} calls/s`,
    table(
      ['target', 'calls/s', 'p50 ms', 'p99 ms', 'errors', 'cut'],
      [
        runRow(['direct'], r.oneAtATime.direct),
        runRow(['router'], r.oneAtATime.router),
        runRow(['nginx'], r.oneAtATime.nginx),
        runRow(['relay'], r.oneAtATime.relay),
      ],
    ),
    addedLine(r.oneAtATime.added),
    '',
    'Highest sustained rate (no --rps)',
    table(
      ['pool', 'target', 'calls/s', 'p50 ms', 'p99 ms', 'errors', 'cut'],
      [
        runRow(['homogeneous', 'direct'], r.maxRate.homogeneous.direct),
        runRow(['homogeneous', 'router'], r.maxRate.homogeneous.router),
        runRow(['homogeneous', 'nginx'], r.maxRate.homogeneous.nginx),
        runRow(['homogeneous', 'relay'], r.maxRate.homogeneous.relay),
        runRow(['heterogeneous', 'router'], r.maxRate.heterogeneous.router),
        runRow(['heterogeneous', 'nginx'], r.maxRate.heterogeneous.nginx),
        runRow(['heterogeneous', 'relay'], r.maxRate.heterogeneous.relay),
      ],
    ),
    '',
    'Pick cost',
    table(
      ['policy', 'endpoints', 'ns/pick', 'ns/call'],
      r.pick.map((p) => [p.policy, String(p.endpoints), f0(p.nsPerPick), f0(p.nsPerCall)]),
    ),
    '',
    'Targets (reported, not asserted)',
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.value, t.met === undefined ? 'n/a' : t.met ? 'yes' : 'NO']),
    ),
  );
  return out.join('\n');
}

export function evaluateTargets(r: Omit<ProxyBenchResult, 'targets'>): ProxyBenchResult['targets'] {
  const slowest = r.pick.reduce((a, b) => (b.nsPerPick > a.nsPerPick ? b : a));
  const pick = slowest.nsPerPick;
  const added = r.addedLatency.router.p50Ms;
  const ratio = (router: RunResult, nginx: RunResult | undefined) =>
    nginx && nginx.callsPerSec > 0 ? router.callsPerSec / nginx.callsPerSec : undefined;
  const homo = ratio(r.maxRate.homogeneous.router, r.maxRate.homogeneous.nginx);
  const het = ratio(r.maxRate.heterogeneous.router, r.maxRate.heterogeneous.nginx);
  const pct = (x: number | undefined) => (x === undefined ? 'no nginx' : `${(x * 100).toFixed(0)}% of nginx`);
  return [
    {
      name: 'pick (slowest)',
      target: '≤ 5 µs',
      value: `${(pick / 1000).toFixed(2)} µs (${slowest.policy}, ${slowest.endpoints})`,
      met: pick <= 5000,
    },
    { name: 'added p50', target: '≤ 0.3 ms', value: `${f2(added)} ms`, met: added <= 0.3 },
    {
      name: 'throughput, homogeneous',
      target: '≥ 50% of nginx',
      value: pct(homo),
      met: homo === undefined ? undefined : homo >= 0.5,
    },
    {
      name: 'throughput, heterogeneous',
      target: '≥ 50% of nginx',
      value: pct(het),
      met: het === undefined ? undefined : het >= 0.5,
    },
  ];
}

function formatMarkdown(r: ProxyBenchResult, command: string): string {
  const missed = r.targets.filter((t) => t.met === false).map((t) => `${t.name} (${t.value})`);
  const la = r.env.loadAverage;
  return [
    '# sibyl bench proxy',
    '',
    `Measured with \`${command}\` on ${new Date().toISOString().slice(0, 10)}; raw figures in proxy.json.`,
    '',
    '```',
    formatProxyBench(r),
    '```',
    '',
    '## Reading the figures',
    '',
    `- Everything ran on 127.0.0.1 on one ${r.env.cpus}-CPU machine: ghz, the backends, the router or nginx, ` +
      `and whatever else the machine was doing (load average ${la.before.toFixed(1)} before the runs, ` +
      `${la.after.toFixed(1)} after). The rates are those of the whole set-up, and latencies at a fixed ` +
      'rate grow with the time each process waits for a CPU; a proxy that needs more CPU per call waits more.',
    '- Direct is one grpc-js backend. The router is one Node process doing, for every call, the work of a ' +
      'gRPC server and of a client (two HTTP/2 streams in node:http2); nginx does the same in C with ' +
      `${r.env.nginxWorkers} worker.`,
    '- "One call at a time" has no queueing anywhere: what each hop costs by itself.',
    '- relay is a bare node:http2 relay (src/tools/bench/relay.ts: round robin, no limits, breakers, retries, ' +
      'deadlines, cache or metrics): the floor for any proxy built on node:http2, measured beside the ' +
      'router in the same run. The router minus the relay is what its features cost; the relay minus ' +
      "direct is what Node's HTTP/2 costs per hop here.",
    `- Targets: ${missed.length ? `missed: ${missed.join(', ')}` : 'all met'}.`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Processes.

async function waitForPort(port: number, child: Child, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited: ${child.stderr.join('')}`);
    if (Date.now() > until) throw new Error(`${child.name} did not listen on ${port} within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startNginx(
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

function execTool(bin: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(bin)} failed: ${errorMessage(err)}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function ghz(
  o: Options,
  dir: string,
  target: string,
  address: string,
  rps: number | undefined,
): Promise<RunResult> {
  // A warm-up run first (connections, JIT, sessions upstream), then the one measured.
  await ghzRun(o, dir, target, address, rps, WARMUP_S, 'warm-up');
  return ghzRun(o, dir, target, address, rps, o.durationS);
}

async function ghzRun(
  o: Options,
  dir: string,
  target: string,
  address: string,
  rps: number | undefined,
  seconds: number,
  what = 'measured',
): Promise<RunResult> {
  const out = path.join(dir, `ghz-${Date.now()}.json`);
  const skipFirst = 100;
  const args = (seconds: number, file: string) => [
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
    file,
    '--skipFirst',
    String(skipFirst),
    '-z',
    `${seconds}s`,
    '-c',
    String(o.concurrency),
    '--connections',
    String(o.connections),
    ...(rps !== undefined ? ['--rps', String(rps)] : []),
    address,
  ];
  if (!o.json) {
    process.stderr.write(`  ghz ${target} ${rps ? `at ${rps}/s` : 'flat out'} for ${seconds}s (${what})\n`);
  }
  await execTool(o.ghz, args(seconds, out), (seconds + 60) * 1000);
  const report = JSON.parse(await readFile(out, 'utf8')) as GhzReport;
  await rm(out, { force: true });
  return summarizeGhz(target, report, rps);
}

/**
 * Each target in turn, --repeat rounds of them (interleaved, so a burst of other work on the machine
 * lands on all of them alike); per target the median run: by p50 at a fixed rate, by calls/s flat out.
 */
async function measure<K extends string>(
  o: Options,
  dir: string,
  targets: Record<K, string | undefined>,
  rps: number | undefined,
): Promise<Record<K, RunResult | undefined> & { router: RunResult }> {
  const runs = new Map<K, RunResult[]>();
  for (let i = 0; i < o.repeat; i++) {
    for (const [name, address] of Object.entries(targets) as [K, string | undefined][]) {
      if (address === undefined) continue;
      const r = await ghz(o, dir, name, address, rps);
      runs.set(name, [...(runs.get(name) ?? []), r]);
    }
  }
  const out = {} as Record<K, RunResult | undefined>;
  for (const name of Object.keys(targets) as K[]) {
    const rs = runs.get(name);
    if (!rs) {
      out[name] = undefined;
      continue;
    }
    const sorted = [...rs].sort((a, b) =>
      rps !== undefined ? a.p50Ms - b.p50Ms : b.callsPerSec - a.callsPerSec,
    );
    const median = sorted[(sorted.length - 1) >> 1] as RunResult;
    out[name] =
      rs.length > 1
        ? { ...median, runs: rs.map((r) => ({ callsPerSec: r.callsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms })) }
        : median;
  }
  return out as Record<K, RunResult | undefined> & { router: RunResult };
}

/** ghz: --ghz, $SIBYL_GHZ, PATH, the sibyl-tools bin dir (hack/k8s-tools.sh path), its ghz-* siblings. */
function findGhz(explicit?: string): string | undefined {
  const candidates: string[] = [];
  if (explicit) return explicit;
  if (process.env.SIBYL_GHZ) candidates.push(process.env.SIBYL_GHZ);
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) if (d) candidates.push(path.join(d, 'ghz'));
  const cache =
    process.env.SIBYL_TOOLS_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'sibyl-tools');
  candidates.push(path.join(cache, 'bin', 'ghz'));
  if (existsSync(cache)) {
    const versions = readdirSync(cache)
      .filter((n) => n.startsWith('ghz-'))
      .map((n) => path.join(cache, n, 'ghz'))
      .filter((p) => existsSync(p))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    candidates.push(...versions);
  }
  return candidates.find((c) => existsSync(c));
}

function findNginx(flag: string | undefined): string | undefined {
  if (flag !== undefined) return flag === '' ? undefined : flag;
  const candidates = ['/usr/sbin/nginx'];
  for (const d of (process.env.PATH ?? '').split(path.delimiter))
    if (d) candidates.push(path.join(d, 'nginx'));
  return candidates.find((c) => existsSync(c));
}

// ---------------------------------------------------------------------------------------------------
// The benchmark.

function intFlag(v: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SibylError('ERR_USAGE', `--${flag} "${v}" must be an integer from ${min} to ${max}`);
  }
  return n;
}

function parseOptions(argv: string[]): Options | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string', default: '10s' },
        rps: { type: 'string' },
        backends: { type: 'string' },
        'latency-ms': { type: 'string' },
        hetero: { type: 'string', default: '0,1,2,5' },
        concurrency: { type: 'string', short: 'c' },
        connections: { type: 'string' },
        policy: { type: 'string', default: 'LeastRequest' },
        'nginx-workers': { type: 'string' },
        ghz: { type: 'string' },
        nginx: { type: 'string' },
        out: { type: 'string', default: 'bench/results' },
        json: { type: 'boolean', default: false },
        repeat: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new SibylError('ERR_USAGE', `${errorMessage(e)}\n\n${HELP}`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const durationMs = parseDuration(v.duration);
  if (durationMs < 1000 || durationMs > 600_000) {
    throw new SibylError('ERR_USAGE', `--duration ${v.duration}: from 1s to 10m`);
  }
  const hetero = v.hetero.split(',').map((s) => Number(s.trim()));
  if (hetero.length < 2 || hetero.some((x) => !Number.isFinite(x) || x < 0 || x > 10_000)) {
    throw new SibylError('ERR_USAGE', `--hetero "${v.hetero}": two or more latencies in ms, comma-separated`);
  }
  const ghzBin = findGhz(v.ghz);
  if (!ghzBin) {
    throw new SibylError('ERR_USAGE', 'ghz not found: run hack/k8s-tools.sh load, or pass --ghz PATH');
  }
  const latency = v['latency-ms'] === undefined ? 0 : Number(v['latency-ms']);
  if (!Number.isFinite(latency) || latency < 0)
    throw new SibylError('ERR_USAGE', '--latency-ms: a number ≥ 0');
  return {
    durationS: Math.round(durationMs / 1000),
    rps: intFlag(v.rps, 'rps', 1000, 1, 1_000_000),
    backends: intFlag(v.backends, 'backends', 4, 1, 64),
    latencyMs: latency,
    hetero,
    concurrency: intFlag(v.concurrency, 'concurrency', 50, 1, 10_000),
    connections: intFlag(v.connections, 'connections', 4, 1, 1000),
    policy: v.policy,
    nginxWorkers: intFlag(v['nginx-workers'], 'nginx-workers', 1, 1, 64),
    ghz: ghzBin,
    nginx: findNginx(v.nginx),
    out: v.out || undefined,
    json: v.json,
    repeat: intFlag(v.repeat, 'repeat', 1, 1, 20),
  };
}

interface Stage {
  backends: string[];
  router: string;
  nginx: string | undefined;
  relay: string;
}

/** Starts a pool of backends with these service times, the router and nginx in front; runs `f`; stops all. */
async function withPool<T>(
  o: Options,
  dir: string,
  latencies: number[],
  f: (s: Stage) => Promise<T>,
): Promise<T> {
  const children: Child[] = [];
  try {
    const backends = await Promise.all(
      latencies.map((ms, i) => startBenchBackend(`backend ${i}`, ms, ['--name', `b${i}`])),
    );
    children.push(...backends.map((b) => b.child));
    const addresses = backends.map((b) => b.listening);
    const config = path.join(dir, `routes-${latencies.join('-')}.yaml`);
    const pool = {
      name: 'bench',
      match: { services: ['sibyl.demo.v1.Demo'] },
      endpoints: addresses.map((address) => ({ address })),
      balancing: { policy: o.policy },
    };
    const router = await startRouterWithPools('router', config, [pool]);
    children.push(router.child);
    const relay = await startSibyl(
      'relay',
      addresses.flatMap((a) => ['--upstream', a]),
      RELAY,
    );
    children.push(relay.child);
    let nginx: string | undefined;
    if (o.nginx) {
      const n = await startNginx(o.nginx, dir, addresses, o.nginxWorkers);
      children.push(n.child);
      nginx = n.listening;
    }
    // Fresh processes: JIT tiers and heap sizes settle over the first several thousand calls.
    for (const [name, address] of [
      ['router', router.listening],
      ['nginx', nginx],
      ['relay', relay.listening],
    ] as const) {
      if (address) await ghzRun(o, dir, name, address, undefined, POOL_WARMUP_S, 'warm-up');
    }
    const result = await f({ backends: addresses, router: router.listening, nginx, relay: relay.listening });
    // Something else on the machine stopping a backend or proxy mid-run would make every figure after it
    // meaningless: refuse the results rather than print them.
    const dead = children.filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
    if (dead.length > 0) {
      const which = dead.map((c) => `${c.name} (${c.proc.signalCode ?? `exit ${c.proc.exitCode}`})`);
      throw new Error(`stopped during the runs, so the figures are void: ${which.join(', ')}`);
    }
    return result;
  } finally {
    await Promise.all(children.map(stop));
  }
}

async function version(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const text = `${stdout}${stderr}`.trim();
      resolve(err ? 'unknown' : (/[0-9]+\.[0-9]+\.[0-9]+/.exec(text)?.[0] ?? text.split('\n')[0] ?? ''));
    });
  });
}

async function runProxyBench(o: Options): Promise<ProxyBenchResult> {
  if (!existsSync(PROTO)) throw new SibylError('ERR_USAGE', `the demo proto is missing: ${PROTO}`);
  if (o.nginx && !existsSync(NGINX_TEMPLATE)) {
    throw new SibylError('ERR_USAGE', `the nginx template is missing: ${NGINX_TEMPLATE}`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-bench-proxy-'));
  const stopAll = () => void rm(dir, { recursive: true, force: true });
  try {
    const log = (s: string) => (o.json ? undefined : process.stderr.write(`${s}\n`));
    log('pick cost…');
    // Every policy, at the pool's size and at 100 endpoints (Predictive scores them all).
    const pick = [o.backends, 100].flatMap((endpoints) =>
      runPickBench({ policies: balancerNames(), endpoints, picks: 50_000, runs: 5 }).map((p) => ({
        policy: p.policy,
        endpoints: p.endpoints,
        nsPerPick: p.nsPerPick,
        nsPerCall: p.nsPerCall,
      })),
    );

    log(`homogeneous pool: ${o.backends} backends at ${o.latencyMs} ms`);
    const loadBefore = loadavg()[0] as number;
    const homo = await withPool(o, dir, Array<number>(o.backends).fill(o.latencyMs), async (s) => {
      const targets = { direct: s.backends[0] as string, router: s.router, nginx: s.nginx, relay: s.relay };
      return {
        fixed: await measure(o, dir, targets, o.rps),
        single: await measure({ ...o, concurrency: 1, connections: 1 }, dir, targets, SINGLE_RPS),
        max: await measure(o, dir, targets, undefined),
      };
    });
    log(`heterogeneous pool: backends at ${o.hetero.join(', ')} ms`);
    const het = await withPool(o, dir, o.hetero, async (s) =>
      measure(o, dir, { direct: undefined, router: s.router, nginx: s.nginx, relay: s.relay }, undefined),
    );

    const direct = homo.fixed.direct as RunResult; // always measured in the homogeneous pool
    const added = (r: RunResult, base = direct) => ({
      p50Ms: r.p50Ms - base.p50Ms,
      p99Ms: r.p99Ms - base.p99Ms,
    });
    const single = homo.single.direct as RunResult;
    const partial: Omit<ProxyBenchResult, 'targets'> = {
      env: {
        node: process.versions.node,
        cpus: cpus().length,
        ghz: await version(o.ghz, ['--version']),
        ...(o.nginx ? { nginx: await version(o.nginx, ['-v']) } : {}),
        nginxWorkers: o.nginxWorkers,
        policy: o.policy,
        durationS: o.durationS,
        concurrency: o.concurrency,
        connections: o.connections,
        backends: o.backends,
        latencyMs: o.latencyMs,
        heteroLatenciesMs: o.hetero,
        repeat: o.repeat,
        loadAverage: { before: loadBefore, after: loadavg()[0] as number },
      },
      pick,
      fixedRate: { rps: o.rps, ...homo.fixed },
      addedLatency: {
        router: added(homo.fixed.router),
        ...(homo.fixed.nginx ? { nginx: added(homo.fixed.nginx) } : {}),
        ...(homo.fixed.relay ? { relay: added(homo.fixed.relay) } : {}),
      },
      oneAtATime: {
        rps: SINGLE_RPS,
        ...homo.single,
        added: {
          router: added(homo.single.router, single),
          ...(homo.single.nginx ? { nginx: added(homo.single.nginx, single) } : {}),
          ...(homo.single.relay ? { relay: added(homo.single.relay, single) } : {}),
        },
      },
      maxRate: {
        homogeneous: homo.max,
        heterogeneous: { router: het.router, nginx: het.nginx, relay: het.relay },
      },
    };
    return { ...partial, targets: evaluateTargets(partial) };
  } finally {
    stopAll();
  }
}

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  if (o === 'help') {
    console.log(HELP);
    return 0;
  }
  const result = await runProxyBench(o);
  if (o.json) console.log(JSON.stringify(result, null, 2));
  else console.log(formatProxyBench(result));
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    const command = `sibyl bench proxy ${argv.join(' ')}`.trim();
    await writeFile(path.join(o.out, 'proxy.json'), `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(path.join(o.out, 'proxy.md'), formatMarkdown(result, command));
    if (!o.json) console.log(`\nwrote ${path.join(o.out, 'proxy.json')} and proxy.md`);
  }
  return 0;
}
