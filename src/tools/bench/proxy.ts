import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../util/duration.js';
import { SibylError, errorMessage } from '../../util/errors.js';
import { balancerNames } from '../../balancer/index.js';
import { PROTO, findTool, ghzRun, xdsClientForSources } from './ghz.js';
import { NGINX_TEMPLATE, findNginx } from './nginx.js';
import { runPickBench } from './pick.js';
import { withPool, type DriverName, type Pool, type PoolSetup } from './proxy-pool.js';
import { evaluateTargets, type ProxyBenchResult } from './proxy-result.js';
import { formatMarkdown, formatProxyBench } from './proxy-report.js';
import { medianRun, summarizeLoad, type RunResult } from './run-result.js';

/**
 * `sibyl bench proxy` (bench/scenarios/README.md): the router, nginx `grpc_pass` least_conn, Envoy
 * programmed by sibyl's ADS and the proxyless gRPC clients (grpc-go, and grpc-js with sibyl's own
 * policy) against a direct connection, all on 127.0.0.1. Backends (`sibyl backend`), the router,
 * nginx, Envoy and the load clients each run as a child process; the ADS runs in this process.
 *
 * Measured, each run lasting --duration, interleaved over --repeat rounds:
 *   - at a fixed rate (--rps), ghz: one backend directly, then the router, nginx, the bare relay and
 *     Envoy in front of a homogeneous pool of --backends; each one's added latency is its p50 and p99
 *     less the direct ones. The proxyless clients, which ghz cannot be (it has no xds:///), each run
 *     an open-loop load of their own at the same rate, direct and through the ADS, so their added
 *     latency compares a client with itself;
 *   - one call at a time (ghz -c 1, one connection, 200 calls/s): each hop's own cost, no queueing;
 *   - the highest sustained rate (ghz with no --rps), over the homogeneous pool and over a
 *     heterogeneous one (--hetero);
 *   - the tail on a pool of backends with limited slots (--tail, --tail-slots) at --tail-load of the
 *     capacity sibyl estimates for it: Envoy against nginx least_conn, the router beside them;
 *   - what one pick costs, every policy (pick.ts, in this process).
 * Envoy's weights are sibyl's (src/xds/weights.ts: slots over predicted service time), from each
 * backend's service time calibrated by calls made one at a time straight to it (ads.ts).
 * The targets are reported, never asserted.
 *
 * Each pool's proxies get 5 s flat out (its proxyless clients 5 s at --rps) when it starts, and each
 * measured run follows a 2 s warm-up run of the same load. Calls/s counts the first 100 calls with the
 * rest; latencies are over the calls after them. ghz's calls still in flight when a run's time is up
 * are cut by ghz closing its connections: counted apart as `cut`, not as errors.
 */
const HELP = `usage: sibyl bench proxy [flags]

The router, nginx grpc_pass (least_conn), Envoy programmed by sibyl's ADS and proxyless gRPC clients
against a direct connection, on 127.0.0.1. Needs ghz (hack/k8s-tools.sh load), Envoy and
sibyl-xds-client (hack/k8s-tools.sh) and nginx (WITH_NGINX=1 hack/system-deps.sh). Build first.

  --duration D        length of each measured run (default 10s; each after a 2s warm-up)
  --rps N             the fixed rate for the latency comparison (default 1000)
  --backends N        backends in the homogeneous pool (default 4)
  --latency-ms MS     the homogeneous backends' service time (default 0)
  --hetero LIST       service times of the heterogeneous pool's backends, ms (default 0,1,2,5)
  --tail LIST         service times of the tail pool's backends, ms (default 2,2,2,8,25; "" skips it)
  --tail-slots N      each tail backend's slots, sibyl backend --concurrency (default 1)
  --tail-load X       the share of the tail pool's estimated capacity offered (default 0.7)
  --concurrency N     ghz -c: calls in flight (default 50)
  --connections N     ghz --connections (default 4)
  --policy NAME       the router's balancing policy, and the pool's on the ADS (default LeastRequest)
  --nginx-workers N   nginx worker_processes (default 1: the router is one process too)
  --ghz PATH          ghz binary (default: $SIBYL_GHZ, PATH, then the sibyl-tools cache)
  --nginx PATH        nginx binary (default /usr/sbin/nginx, then PATH); "" skips nginx
  --envoy PATH        Envoy binary (default: $SIBYL_ENVOY, PATH, the sibyl-tools cache); "" skips it
  --xds-client PATH   sibyl-xds-client (the same way); "" skips grpc-go
  --proxyless LIST    proxyless clients to measure: go, js (default go,js; "" none)
  --base-id N         Envoy's --base-id (default from this process's id, so Envoys of others differ)
  --out DIR           write proxy.json and proxy.md there (default bench/results; "" for none)
  --repeat N          rounds of every measurement, interleaved; the median run is reported (default 1)
  --json              print the results as one JSON object`;

interface Options {
  durationS: number;
  rps: number;
  backends: number;
  latencyMs: number;
  hetero: number[];
  tail: number[];
  tailSlots: number;
  tailLoad: number;
  concurrency: number;
  connections: number;
  policy: string;
  nginxWorkers: number;
  ghz: string;
  nginx: string | undefined;
  envoy: string | undefined;
  xdsClient: string | undefined;
  js: boolean;
  baseId: number;
  out: string | undefined;
  json: boolean;
  repeat: number;
}

const WARMUP_S = 2;
const SINGLE_RPS = 200;
const POOL_WARMUP_S = 5;

/** How a target's client is driven: a ghz run, or a load client's open-loop run. */
interface Shape {
  concurrency: number;
  connections: number;
}
type Runner = (rps: number | undefined, seconds: number, shape: Shape) => Promise<RunResult>;

const ghzTarget = (o: Options, dir: string, name: string, address: string | undefined): Runner | undefined =>
  address === undefined
    ? undefined
    : (rps, seconds, shape) => ghzRun(o.ghz, dir, name, address, { ...shape, rps, seconds });

function driverTarget(p: Pool, name: DriverName): Runner | undefined {
  const d = p.drivers[name];
  if (!d) return undefined;
  return async (rps, seconds) => {
    if (rps === undefined) throw new Error(`${d.child.name} runs at a fixed rate only`);
    return summarizeLoad(d.child.name, await d.load(rps, seconds), rps);
  };
}

function log(o: Options, s: string): void {
  if (!o.json) process.stderr.write(`${s}\n`);
}

/**
 * Each target in turn, --repeat rounds of them (interleaved, so a burst of other work on the machine
 * lands on all of them alike), each measured run after a warm-up run; per target the median run.
 */
async function measure<K extends string>(
  o: Options,
  targets: Record<K, Runner | undefined>,
  rps: number | undefined,
  shape: Shape = o,
): Promise<Record<K, RunResult | undefined>> {
  const runs = new Map<K, RunResult[]>();
  for (let i = 0; i < o.repeat; i++) {
    for (const [name, run] of Object.entries(targets) as [K, Runner | undefined][]) {
      if (!run) continue;
      const how = rps ? `at ${rps}/s` : 'flat out';
      log(o, `  ${name} ${how} for ${WARMUP_S}s (warm-up), then ${o.durationS}s`);
      await run(rps, WARMUP_S, shape);
      runs.set(name, [...(runs.get(name) ?? []), await run(rps, o.durationS, shape)]);
    }
  }
  const out = {} as Record<K, RunResult | undefined>;
  for (const name of Object.keys(targets) as K[]) {
    const rs = runs.get(name);
    out[name] = rs ? medianRun(rs, rps !== undefined) : undefined;
  }
  return out;
}

/** Fresh processes: JIT tiers and heap sizes settle over the first several thousand calls. */
async function warmPool(o: Options, dir: string, p: Pool): Promise<void> {
  for (const [name, address] of Object.entries({
    router: p.router,
    nginx: p.nginx,
    relay: p.relay,
    envoy: p.envoy,
  })) {
    await ghzTarget(o, dir, name, address)?.(undefined, POOL_WARMUP_S, o);
  }
  for (const d of Object.values(p.drivers)) await d.load(o.rps, POOL_WARMUP_S);
}

function setup(o: Options, key: string, latencies: number[], extra: Partial<PoolSetup>): PoolSetup {
  return {
    key,
    latencies,
    slots: 0,
    policy: o.policy,
    relay: true,
    ...(o.nginx ? { nginx: { bin: o.nginx, workers: o.nginxWorkers } } : {}),
    ...extra,
  };
}

async function version(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const text = `${stdout}${stderr}`.trim();
      resolve(err ? 'unknown' : (/[0-9]+\.[0-9]+\.[0-9]+/.exec(text)?.[0] ?? text.split('\n')[0] ?? ''));
    });
  });
}

const diff = (r: RunResult, base: RunResult) => ({
  p50Ms: r.p50Ms - base.p50Ms,
  p99Ms: r.p99Ms - base.p99Ms,
});
const added = (r: RunResult | undefined, base: RunResult | undefined) =>
  r && base ? diff(r, base) : undefined;
/** `{name: value}` when the value is defined, else nothing: optional fields of the result. */
const opt = <T>(name: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [name]: v });

async function runProxyBench(o: Options): Promise<ProxyBenchResult> {
  if (!existsSync(PROTO)) throw new SibylError('ERR_USAGE', `the demo proto is missing: ${PROTO}`);
  if (o.nginx && !existsSync(NGINX_TEMPLATE)) {
    throw new SibylError('ERR_USAGE', `the nginx template is missing: ${NGINX_TEMPLATE}`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-bench-proxy-'));
  try {
    log(o, 'pick cost…');
    // Every policy, at the pool's size and at 100 endpoints (Predictive scores them all).
    const pick = [o.backends, 100].flatMap((endpoints) =>
      runPickBench({ policies: balancerNames(), endpoints, picks: 50_000, runs: 5 }).map((p) => ({
        policy: p.policy,
        endpoints: p.endpoints,
        nsPerPick: p.nsPerPick,
        nsPerCall: p.nsPerCall,
      })),
    );
    const proxyless = o.xdsClient || o.js ? { proxyless: { go: o.xdsClient, js: o.js } } : {};
    const envoy = (i: number) => (o.envoy ? { envoy: { bin: o.envoy, baseId: o.baseId + i } } : {});

    log(o, `homogeneous pool: ${o.backends} backends at ${o.latencyMs} ms`);
    const loadBefore = loadavg()[0] as number;
    const homoSetup = setup(o, 'bench/homogeneous', Array<number>(o.backends).fill(o.latencyMs), {
      ...envoy(0),
      ...proxyless,
      offered: () => o.rps,
    });
    const homo = await withPool(homoSetup, dir, async (p) => {
      await warmPool(o, dir, p);
      const ghz = {
        direct: ghzTarget(o, dir, 'direct', p.backends[0]),
        router: ghzTarget(o, dir, 'router', p.router),
        nginx: ghzTarget(o, dir, 'nginx', p.nginx),
        relay: ghzTarget(o, dir, 'relay', p.relay),
        envoy: ghzTarget(o, dir, 'envoy', p.envoy),
      };
      const drivers = {
        goDirect: driverTarget(p, 'goDirect'),
        goXds: driverTarget(p, 'goXds'),
        jsDirect: driverTarget(p, 'jsDirect'),
        jsXds: driverTarget(p, 'jsXds'),
      };
      return {
        xds: p.xds,
        fixed: await measure(o, { ...ghz, ...drivers }, o.rps),
        single: await measure(o, ghz, SINGLE_RPS, { concurrency: 1, connections: 1 }),
        max: await measure(o, ghz, undefined),
      };
    });

    log(o, `heterogeneous pool: backends at ${o.hetero.join(', ')} ms`);
    const het = await withPool(setup(o, 'bench/heterogeneous', o.hetero, {}), dir, async (p) => {
      await warmPool(o, dir, p);
      const t = { router: ghzTarget(o, dir, 'router', p.router), nginx: ghzTarget(o, dir, 'nginx', p.nginx) };
      return measure(o, { ...t, relay: ghzTarget(o, dir, 'relay', p.relay) }, undefined);
    });

    let tail: ProxyBenchResult['tail'];
    if (o.tail.length > 0) {
      log(o, `tail pool: backends at ${o.tail.join(', ')} ms, ${o.tailSlots} slot(s) each`);
      const tailSetup = setup(o, 'bench/tail', o.tail, {
        slots: o.tailSlots,
        relay: false,
        ...envoy(1),
        offered: (capacity) => Math.round(o.tailLoad * capacity),
      });
      tail = await withPool(tailSetup, dir, async (p) => {
        const xds = p.xds;
        if (!xds?.offeredCallsPerSec) throw new Error('the tail pool was not programmed on the ADS');
        const rps = xds.offeredCallsPerSec;
        await warmPool(o, dir, p);
        const t = {
          router: ghzTarget(o, dir, 'router', p.router),
          nginx: ghzTarget(o, dir, 'nginx', p.nginx),
        };
        const r = await measure(o, { ...t, envoy: ghzTarget(o, dir, 'envoy', p.envoy) }, rps);
        const router = r.router as RunResult;
        const [slots, load, latenciesMs] = [o.tailSlots, o.tailLoad, o.tail];
        return {
          latenciesMs,
          slots,
          load,
          rps,
          xds,
          router,
          ...opt('nginx', r.nginx),
          ...opt('envoy', r.envoy),
        };
      });
    }

    const f = homo.fixed;
    const s = homo.single;
    const direct = f.direct as RunResult; // always measured
    const partial: Omit<ProxyBenchResult, 'targets'> = {
      env: {
        node: process.versions.node,
        cpus: cpus().length,
        ghz: await version(o.ghz, ['--version']),
        ...(o.nginx ? { nginx: await version(o.nginx, ['-v']) } : {}),
        nginxWorkers: o.nginxWorkers,
        ...(o.envoy ? { envoy: await version(o.envoy, ['--version']) } : {}),
        proxyless: [...(o.xdsClient ? ['grpc-go'] : []), ...(o.js ? ['grpc-js'] : [])],
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
      fixedRate: { rps: o.rps, ...f, router: f.router as RunResult },
      addedLatency: {
        router: diff(f.router as RunResult, direct),
        ...opt('nginx', added(f.nginx, direct)),
        ...opt('relay', added(f.relay, direct)),
        ...opt('envoy', added(f.envoy, direct)),
        ...opt('goXds', added(f.goXds, f.goDirect)),
        ...opt('jsXds', added(f.jsXds, f.jsDirect)),
      },
      oneAtATime: {
        rps: SINGLE_RPS,
        ...s,
        router: s.router as RunResult,
        added: {
          router: diff(s.router as RunResult, s.direct as RunResult),
          ...opt('nginx', added(s.nginx, s.direct)),
          ...opt('relay', added(s.relay, s.direct)),
          ...opt('envoy', added(s.envoy, s.direct)),
        },
      },
      maxRate: {
        homogeneous: { ...homo.max, router: homo.max.router as RunResult },
        heterogeneous: { ...het, router: het.router as RunResult },
      },
      ...opt('xds', homo.xds),
      ...opt('tail', tail),
    };
    return { ...partial, targets: evaluateTargets(partial) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Flags.

function intFlag(v: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SibylError('ERR_USAGE', `--${flag} "${v}" must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** A comma-separated list of service times in ms ("" for none when `empty`). */
function latencies(v: string, flag: string, empty: boolean): number[] {
  if (empty && v.trim() === '') return [];
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.length < 2 || list.some((x) => !Number.isFinite(x) || x < 0 || x > 10_000)) {
    throw new SibylError('ERR_USAGE', `--${flag} "${v}": two or more latencies in ms, comma-separated`);
  }
  return list;
}

/** A binary found (and pinned: a symlink another run may move is resolved now), or undefined. */
function tool(name: string, flag: string | undefined, env: string): string | undefined {
  const bin = findTool(name, flag, env);
  return bin && existsSync(bin) ? realpathSync(bin) : bin;
}

/** --xds-client, $SIBYL_XDS_CLIENT, the build of this checkout's sources, then as any tool. */
function xdsClient(flag: string | undefined): string | undefined {
  const explicit = flag ?? process.env.SIBYL_XDS_CLIENT;
  if (explicit !== undefined) return explicit === '' ? undefined : explicit;
  return xdsClientForSources() ?? tool('sibyl-xds-client', undefined, 'SIBYL_XDS_CLIENT');
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
        tail: { type: 'string', default: '2,2,2,8,25' },
        'tail-slots': { type: 'string' },
        'tail-load': { type: 'string' },
        concurrency: { type: 'string', short: 'c' },
        connections: { type: 'string' },
        policy: { type: 'string', default: 'LeastRequest' },
        'nginx-workers': { type: 'string' },
        ghz: { type: 'string' },
        nginx: { type: 'string' },
        envoy: { type: 'string' },
        'xds-client': { type: 'string' },
        proxyless: { type: 'string', default: 'go,js' },
        'base-id': { type: 'string' },
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
  const ghzBin = findTool('ghz', v.ghz, 'SIBYL_GHZ');
  if (!ghzBin) {
    throw new SibylError('ERR_USAGE', 'ghz not found: run hack/k8s-tools.sh load, or pass --ghz PATH');
  }
  const latency = v['latency-ms'] === undefined ? 0 : Number(v['latency-ms']);
  if (!Number.isFinite(latency) || latency < 0)
    throw new SibylError('ERR_USAGE', '--latency-ms: a number ≥ 0');
  const tailLoad = v['tail-load'] === undefined ? 0.7 : Number(v['tail-load']);
  if (!(tailLoad > 0 && tailLoad <= 1)) throw new SibylError('ERR_USAGE', '--tail-load: a share in (0, 1]');
  const proxyless = v.proxyless
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = proxyless.filter((p) => p !== 'go' && p !== 'js');
  if (unknown.length) throw new SibylError('ERR_USAGE', `--proxyless: go, js (not ${unknown.join(', ')})`);
  const envoy = tool('envoy', v.envoy, 'SIBYL_ENVOY');
  const tail = latencies(v.tail, 'tail', true);
  if (tail.length > 0 && !envoy) {
    throw new SibylError(
      'ERR_USAGE',
      'the tail pool compares Envoy with nginx: Envoy not found (or --tail "")',
    );
  }
  return {
    durationS: Math.round(durationMs / 1000),
    rps: intFlag(v.rps, 'rps', 1000, 1, 1_000_000),
    backends: intFlag(v.backends, 'backends', 4, 1, 64),
    latencyMs: latency,
    hetero: latencies(v.hetero, 'hetero', false),
    tail,
    tailSlots: intFlag(v['tail-slots'], 'tail-slots', 1, 1, 10_000),
    tailLoad,
    concurrency: intFlag(v.concurrency, 'concurrency', 50, 1, 10_000),
    connections: intFlag(v.connections, 'connections', 4, 1, 1000),
    policy: v.policy,
    nginxWorkers: intFlag(v['nginx-workers'], 'nginx-workers', 1, 1, 64),
    ghz: ghzBin,
    nginx: findNginx(v.nginx),
    envoy,
    xdsClient: proxyless.includes('go') ? xdsClient(v['xds-client']) : undefined,
    js: proxyless.includes('js'),
    baseId: intFlag(v['base-id'], 'base-id', 10_000 + (process.pid % 100_000) * 4, 0, 1_000_000),
    out: v.out || undefined,
    json: v.json,
    repeat: intFlag(v.repeat, 'repeat', 1, 1, 20),
  };
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
