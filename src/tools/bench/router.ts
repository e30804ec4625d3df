import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { quantile } from '../sim/metrics.js';
import { parseDuration } from '../../util/duration.js';
import { SibylError, errorMessage } from '../../util/errors.js';
import { freePort } from '../../util/net.js';
import { echoClient, ready } from './echo-client.js';
import { openLoop, type CallLog } from './open-loop.js';
import { startRouterWithPools, startSibyl, withProcesses, type Child } from './processes.js';
import { formatOverload, overload, type OverloadComparison } from './router-overload.js';

/**
 * `sibyl bench router`: two of the router's resilience features measured through the real router —
 * `sibyl backend` processes with injected faults, `sibyl router` processes from routes files, and an
 * open-loop grpc-js client in this process — each with the feature off and on, side by side in one run:
 * the two settings (each its own router over its own identical backends) take the same load at the
 * same time, so a burst of other work on the machine lands on both alike.
 *
 *   breakers: --backends backends of --latency-ms, one failing every call at once (UNAVAILABLE, the
 *     "sinkhole" of FIELD-NOTES); the router without breakers (circuitBreaker.maxEjectionPercent 0:
 *     none may open) against the CRD's defaults. Retries off in both (retries.maxAttempts 1), so what
 *     is measured is the breakers, not a retry hiding the failure: error rate, p99 of the calls that
 *     succeeded and p99 of all calls, a failed one counted at the deadline (as the simulator's p99All).
 *   hedging: the same pool, one backend with a slow tail (log-normal service time, σ --tail-sigma,
 *     mean unchanged); hedging off against `hedging: {enabled: true}` (delay "Predicted": the router's
 *     own p90 of the method; maxPercent 10): p99, p99.9, and the extra load hedges put on the backends
 *     (their calls received, from each backend's sibyl_backend_requests_total, over the client's calls).
 *
 * Both use the RoundRobin policy, so the feature's own effect is measured rather than a policy steering
 * around the fault (the simulator measures the policies).
 *
 * overload (router-overload.ts): twice the capacity of 4 backends with 2 slots of 100 ms, the default
 * concurrency limit (QueueDelay) against Gradient2: goodput, admitted p99 against the unloaded p99,
 * success by priority.
 */
const HELP = `usage: sibyl bench router [flags]

Circuit breakers and hedging, each off and on, through real sibyl routers in front of real sibyl
backends with injected faults, under an open-loop grpc-js client on 127.0.0.1; and overload control at
twice the capacity, the default limit (QueueDelay) against Gradient2. Build first.

  --duration D     each measured run (default 10s; after a 2s warm-up run)
  --rps N          the client's fixed rate to each setting (default 200)
  --repeat N       rounds (off and on at once in each); figures pool every round's calls (default 2)
  --backends N     backends in the pool (default 4)
  --latency-ms MS  their service time (default 5; log-normal noise σ 0.3)
  --tail-sigma S   σ of the slow-tailed backend's noise in the hedging run (default 1.5)
  --deadline D     the client's deadline (default 1s)
  --only WHAT      breakers | hedging | overload (default all three); overload measures for
                   --duration × --repeat after a 4s warm-up, 4 × 2 slots × 100 ms backends
  --out DIR        write router.json there, router-SECTION.json with --only, so that one section's
                   run leaves the full run's file alone (default bench/results; "" for none)
  --json           print the results as JSON`;

export interface LoadFigures {
  calls: number;
  errors: number;
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** p99 over every call, a failed one counted at the deadline. */
  p99AllMs: number;
  /** Calls the backends received per client call, less 1 (hedges, retries). */
  extraLoad: number;
  statuses: Record<string, number>;
}

export interface Comparison {
  name: string;
  setup: string;
  off: LoadFigures;
  on: LoadFigures;
}

export interface RouterBenchResult {
  env: {
    node: string;
    cpus: number;
    durationS: number;
    rps: number;
    repeat: number;
    backends: number;
    latencyMs: number;
    tailSigma: number;
    deadlineMs: number;
    loadAverage: { before: number; after: number };
  };
  comparisons: Comparison[];
  overload?: OverloadComparison;
}

interface Options {
  durationS: number;
  rps: number;
  repeat: number;
  backends: number;
  latencyMs: number;
  tailSigma: number;
  deadlineMs: number;
  only?: Section;
  out?: string;
  json: boolean;
}

const WARMUP_S = 2;
const SECTIONS = ['breakers', 'hedging', 'overload'] as const;
type Section = (typeof SECTIONS)[number];
const METHOD = '/sibyl.demo.v1.Demo/Echo';

// ---------------------------------------------------------------------------------------------------
// Pure parts.

/** Figures over the calls of every round; `backendCalls` is what the backends received meanwhile. */
export function summariseCalls(log: CallLog, deadlineMs: number, backendCalls: number): LoadFigures {
  const ok: number[] = [];
  const all: number[] = [];
  const statuses: Record<string, number> = {};
  log.codes.forEach((code, i) => {
    const name = code === 0 ? 'OK' : (grpc.status[code] ?? String(code));
    statuses[name] = (statuses[name] ?? 0) + 1;
    const ms = log.latencyMs[i] as number;
    if (code === 0) ok.push(ms);
    all.push(code === 0 ? ms : Math.max(ms, deadlineMs));
  });
  ok.sort((a, b) => a - b);
  all.sort((a, b) => a - b);
  const calls = log.codes.length;
  const errors = calls - ok.length;
  return {
    calls,
    errors,
    errorRate: calls > 0 ? errors / calls : NaN,
    p50Ms: quantile(ok, 0.5),
    p99Ms: quantile(ok, 0.99),
    p999Ms: quantile(ok, 0.999),
    p99AllMs: quantile(all, 0.99),
    extraLoad: calls > 0 ? backendCalls / calls - 1 : NaN,
    statuses,
  };
}

/** Sum of sibyl_backend_requests_total samples in a Prometheus text exposition. */
export function requestsTotal(metrics: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('sibyl_backend_requests_total')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '-');
/** on ÷ off, as "×0.12"; '-' when undefined. */
export function ratio(on: number, off: number): string {
  return Number.isFinite(on) && Number.isFinite(off) && off > 0 ? `×${(on / off).toFixed(2)}` : '-';
}

export function formatRouterBench(r: RouterBenchResult): string {
  const e = r.env;
  const out = [
    `sibyl bench router: ${e.backends} backends (${e.latencyMs} ms), ${e.rps} calls/s for ${e.durationS}s × ${e.repeat} rounds per setting, ` +
      `deadline ${e.deadlineMs} ms; ${e.cpus} CPUs, Node ${e.node}, load average ${e.loadAverage.before.toFixed(1)} before, ${e.loadAverage.after.toFixed(1)} after`,
  ];
  for (const c of r.comparisons) {
    out.push('', `${c.name}: ${c.setup}`);
    const head = ['', 'calls', 'errors', 'p50 ms', 'p99 ms', 'p99.9 ms', 'p99 all ms', 'extra load'];
    const row = (label: string, f: LoadFigures) => [
      label,
      String(f.calls),
      pct(f.errorRate),
      f1(f.p50Ms),
      f1(f.p99Ms),
      f1(f.p999Ms),
      f1(f.p99AllMs),
      pct(f.extraLoad),
    ];
    const rows = [
      row('off', c.off),
      row('on', c.on),
      [
        'on/off',
        '',
        ratio(c.on.errorRate, c.off.errorRate),
        ratio(c.on.p50Ms, c.off.p50Ms),
        ratio(c.on.p99Ms, c.off.p99Ms),
        ratio(c.on.p999Ms, c.off.p999Ms),
        ratio(c.on.p99AllMs, c.off.p99AllMs),
        '',
      ],
    ];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]) =>
      cells.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
    out.push(line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
  }
  if (r.overload) out.push('', ...formatOverload(r.overload));
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Processes and load.

interface Backend {
  child: Child;
  address: string;
  metrics: string;
}

async function startBackend(i: number, o: Options, extra: string[]): Promise<Backend> {
  const port = await freePort();
  const { child, listening } = await startSibyl(`backend ${i}`, [
    'backend',
    '--listen',
    '127.0.0.1:0',
    '--metrics-addr',
    `127.0.0.1:${port}`,
    '--name',
    `b${i}`,
    '--latency-ms',
    String(o.latencyMs),
    '--concurrency',
    '0',
    '--no-reflection',
    '--log-level',
    'warn',
    ...extra,
  ]);
  return { child, address: listening, metrics: `http://127.0.0.1:${port}/metrics` };
}

async function backendCalls(backends: readonly Backend[]): Promise<number> {
  let sum = 0;
  for (const b of backends) {
    const res = await fetch(b.metrics);
    if (!res.ok) throw new Error(`${b.metrics}: HTTP ${res.status}`);
    sum += requestsTotal(await res.text());
  }
  return sum;
}

async function startRouter(
  dir: string,
  name: string,
  pool: Record<string, unknown>,
): Promise<{ child: Child; address: string }> {
  const config = path.join(dir, `${name}.yaml`);
  const { child, listening } = await startRouterWithPools(`router ${name}`, config, [{ name, ...pool }]);
  return { child, address: listening };
}

/** The open-loop load (open-loop.ts) of 64-byte Echo calls at `address`, into `log`. */
async function load(
  address: string,
  rps: number,
  seconds: number,
  deadlineMs: number,
  log?: CallLog,
): Promise<void> {
  const client = echoClient(address);
  try {
    await ready(client);
    await openLoop(client, { rps, seconds, deadlineMs, request: { payload: Buffer.alloc(64, 1) } }, log);
  } finally {
    client.close();
  }
}

type Setting = 'off' | 'on';

/**
 * One setting's processes: its own backends (started with `faults(i)` for backend i) and its router
 * over them with `pool`. Each setting has its own backends so the calls they receive (the extra load
 * of hedges) are counted per setting while both run at once.
 */
async function setting(
  o: Options,
  dir: string,
  children: Child[],
  name: string,
  faults: (i: number) => string[],
  pool: Record<string, unknown>,
): Promise<{ backends: Backend[]; router: string }> {
  const backends = await Promise.all(
    Array.from({ length: o.backends }, (_, i) => startBackend(i, o, faults(i))),
  );
  children.push(...backends.map((b) => b.child));
  const router = await startRouter(dir, name, {
    match: { services: ['sibyl.demo.v1.Demo'] },
    endpoints: backends.map((b) => ({ address: b.address })),
    ...pool,
  });
  children.push(router.child);
  return { backends, router: router.address };
}

/**
 * Both settings under the same load at the same time (so whatever else the machine does lands on both
 * alike), --repeat rounds after a warm-up; each summarised over all its rounds.
 */
async function compare(
  o: Options,
  s: Record<Setting, { backends: Backend[]; router: string }>,
): Promise<Record<Setting, LoadFigures>> {
  const logs: Record<Setting, CallLog> = {
    off: { latencyMs: [], codes: [] },
    on: { latencyMs: [], codes: [] },
  };
  const received = { off: 0, on: 0 };
  const both = (seconds: number, keep: boolean) =>
    Promise.all(
      (['off', 'on'] as const).map(async (k) => {
        const before = keep ? await backendCalls(s[k].backends) : 0;
        await load(s[k].router, o.rps, seconds, o.deadlineMs, keep ? logs[k] : undefined);
        // a hedge's loser is cancelled, but its backend counted it on arrival: read once every call ended
        if (keep) received[k] += (await backendCalls(s[k].backends)) - before;
      }),
    );
  await both(WARMUP_S, false);
  for (let round = 0; round < o.repeat; round++) {
    if (!o.json) {
      process.stderr.write(
        `  off and on at once: ${o.rps} calls/s each for ${o.durationS}s (round ${round + 1})\n`,
      );
    }
    await both(o.durationS, true);
  }
  return {
    off: summariseCalls(logs.off, o.deadlineMs, received.off),
    on: summariseCalls(logs.on, o.deadlineMs, received.on),
  };
}

async function breakers(o: Options, dir: string): Promise<Comparison> {
  return withProcesses(async (children) => {
    const faults = (i: number) => (i === 0 ? ['--error-rate', '1'] : []);
    const base = { balancing: { policy: 'RoundRobin' }, retries: { maxAttempts: 1 } };
    const r = await compare(o, {
      off: await setting(o, dir, children, 'breakers-off', faults, {
        ...base,
        circuitBreaker: { maxEjectionPercent: 0 },
      }),
      on: await setting(o, dir, children, 'breakers-on', faults, base),
    });
    return {
      name: 'circuit breakers',
      setup:
        `one of ${o.backends} backends fails every call at once (UNAVAILABLE); RoundRobin, no retries; ` +
        'off = circuitBreaker.maxEjectionPercent 0, on = the CRD defaults (5 failures, 30s recovery)',
      ...r,
    };
  });
}

async function hedging(o: Options, dir: string): Promise<Comparison> {
  return withProcesses(async (children) => {
    const faults = (i: number) => ['--jitter', i === 0 ? String(o.tailSigma) : '0.3'];
    const base = { balancing: { policy: 'RoundRobin' }, idempotentMethods: [METHOD] };
    const r = await compare(o, {
      off: await setting(o, dir, children, 'hedging-off', faults, base),
      on: await setting(o, dir, children, 'hedging-on', faults, { ...base, hedging: { enabled: true } }),
    });
    return {
      name: 'hedging',
      setup:
        `one of ${o.backends} backends has a slow tail (log-normal noise σ ${o.tailSigma}, others 0.3); RoundRobin; ` +
        'on = hedging {enabled: true}: a second attempt after the predicted p90, within 10% extra calls',
      ...r,
    };
  });
}

export async function runRouterBench(o: Options): Promise<RouterBenchResult> {
  const before = loadavg()[0] ?? NaN;
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-bench-router-'));
  try {
    const comparisons: Comparison[] = [];
    const runs = (s: Section) => o.only === undefined || o.only === s;
    if (runs('breakers')) comparisons.push(await breakers(o, dir));
    if (runs('hedging')) comparisons.push(await hedging(o, dir));
    const over = runs('overload')
      ? await overload(
          { backends: o.backends, seconds: o.durationS * o.repeat, deadlineMs: o.deadlineMs },
          dir,
        )
      : undefined;
    return {
      env: {
        node: process.version,
        cpus: cpus().length,
        durationS: o.durationS,
        rps: o.rps,
        repeat: o.repeat,
        backends: o.backends,
        latencyMs: o.latencyMs,
        tailSigma: o.tailSigma,
        deadlineMs: o.deadlineMs,
        loadAverage: { before, after: loadavg()[0] ?? NaN },
      },
      comparisons,
      ...(over ? { overload: over } : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function num(v: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new SibylError('ERR_USAGE', `--${flag} "${v}" must be a number from ${min} to ${max}`);
  }
  return n;
}

export function parseRouterBenchArgs(argv: string[]): Options | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string', default: '10s' },
        rps: { type: 'string' },
        repeat: { type: 'string' },
        backends: { type: 'string' },
        'latency-ms': { type: 'string' },
        'tail-sigma': { type: 'string' },
        deadline: { type: 'string', default: '1s' },
        only: { type: 'string' },
        out: { type: 'string', default: 'bench/results' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new SibylError('ERR_USAGE', `${errorMessage(e)}\n\n${HELP}`);
  }
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  if (values.only !== undefined && !(SECTIONS as readonly string[]).includes(values.only)) {
    throw new SibylError('ERR_USAGE', `--only "${values.only}" must be one of ${SECTIONS.join(', ')}`);
  }
  const durationS = parseDuration(values.duration) / 1000;
  if (!(durationS >= 1)) throw new SibylError('ERR_USAGE', '--duration must be at least 1s');
  return {
    durationS,
    rps: num(values.rps, 'rps', 200, 1, 5000),
    repeat: Math.round(num(values.repeat, 'repeat', 2, 1, 20)),
    backends: Math.round(num(values.backends, 'backends', 4, 2, 32)),
    latencyMs: num(values['latency-ms'], 'latency-ms', 5, 0, 10_000),
    tailSigma: num(values['tail-sigma'], 'tail-sigma', 1.5, 0, 4),
    deadlineMs: parseDuration(values.deadline),
    ...(values.only ? { only: values.only as Section } : {}),
    ...(values.out ? { out: values.out } : {}),
    json: values.json,
  };
}

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const o = parseRouterBenchArgs(argv);
  if (!o) return 0;
  const r = await runRouterBench(o);
  if (o.json) console.log(JSON.stringify(r, null, 2));
  else console.log(formatRouterBench(r));
  if (o.out) {
    const file = path.join(o.out, o.only ? `router-${o.only}.json` : 'router.json');
    await writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
    (o.json ? console.error : console.log)(`wrote ${file}`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(`sibyl bench router: ${errorMessage(e)}`);
      process.exitCode = 2;
    },
  );
}
