import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_POLICIES, type PolicySummary } from '../sim/runner.js';
import { runControlBench } from './control.js';
import {
  formatRouterBench,
  parseRouterBenchArgs,
  ratio,
  runRouterBench,
  type LoadFigures,
} from './router.js';
import { runScale } from './scale.js';
import { formatCacheBench, runCacheBench } from './cache.js';
import { DEFAULT_TRACE } from './cache-trace.js';
import { modelVariants, simulateFiles, type SimBenchResult } from './sim.js';
import { simSection } from './sim-section.js';

/**
 * `make bench` / `sibyl bench all`: runs the benchmarks that need no external load tool and writes
 * bench/results/README.md, which opens with a before/after table — each capability's figure without it
 * and with it, measured side by side in the same run. `sibyl bench proxy` (ghz and nginx) is run on its
 * own: its latest figures are in bench/results/proxy.md.
 */
const ROOT = new URL('../../../', import.meta.url).pathname;

interface Row {
  capability: string;
  measure: string;
  without: string;
  with: string;
  how: string;
}

const RESULTS = join(ROOT, 'bench/results');

const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(1)} ms`);

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, 'bench/results/README.md') },
    },
  });
  const seeds = Number(v.seeds);
  const rows: Row[] = [];
  const say = (l: string) => console.log(l);

  say('▶ simulator: every scenario (bench/scenarios) through every policy, plots under bench/results');
  const dir = join(ROOT, 'bench/scenarios');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
  const variants = await modelVariants(join(ROOT, 'models/latency'));
  const sim = await simulateFiles(files, {
    policies: [...DEFAULT_POLICIES, ...Object.keys(variants)],
    seeds,
    variants,
    out: RESULTS,
    say,
  });
  const scenario = (name: string): Record<string, PolicySummary> =>
    sim.find((r: SimBenchResult) => r.runs.report.scenario === name)?.runs.report.policies ?? {};
  const het = scenario('heterogeneous');
  rows.push({
    capability: 'predictive balancing',
    measure: 'p99 over all calls, heterogeneous pool (simulator)',
    without: `${ms(het.RoundRobin?.p99AllMs)} RoundRobin, ${ms(het.PeakEwma?.p99AllMs)} PeakEwma`,
    with: ms(het.Predictive?.p99AllMs),
    how: `sibyl bench sim --scenario bench/scenarios/heterogeneous.json --seeds ${seeds}`,
  });
  const sink = scenario('sinkhole');
  rows.push({
    capability: 'failure-aware picks (breaker pricing)',
    measure: 'p99 over all calls, sinkhole (simulator)',
    without: `${ms(sink.LeastRequest?.p99AllMs)} LeastRequest`,
    with: `${ms(sink.Predictive?.p99AllMs)} Predictive`,
    how: `sibyl bench sim --scenario bench/scenarios/sinkhole.json --seeds ${seeds}`,
  });
  const off = scenario('overload-ramp').Predictive;
  const on = scenario('overload-ramp-limited').Predictive;
  rows.push({
    capability: 'adaptive concurrency',
    measure: 'goodput at 2× capacity (simulator)',
    without: `${(off?.peak?.goodputRps ?? off?.goodputRps ?? NaN).toFixed(0)} calls/s`,
    with: `${(on?.peak?.goodputRps ?? on?.goodputRps ?? NaN).toFixed(0)} calls/s`,
    how: `sibyl bench sim --scenario bench/scenarios/overload-ramp.json (and overload-ramp-limited.json) --seeds ${seeds}`,
  });

  say('▶ control stream: every change pushed at once, then routine changes coalesced (1 s)');
  const base = {
    pools: 100,
    endpoints: 20,
    routers: 5,
    routinePerSecond: 200,
    durationMs: v.quick ? 5000 : 10_000,
  };
  const eager = await runControlBench({ ...base, pushIntervalMs: 0 });
  const batched = await runControlBench({ ...base, pushIntervalMs: 1000 });
  rows.push({
    capability: 'batched control pushes',
    measure: 'pushes per router per second (200 routine changes/s)',
    without: `${eager.pushesPerSecondPerRouter.toFixed(1)} /s, ${(eager.bytesPerSecondPerRouter / 1024).toFixed(0)} KiB/s`,
    with: `${batched.pushesPerSecondPerRouter.toFixed(1)} /s, ${(batched.bytesPerSecondPerRouter / 1024).toFixed(0)} KiB/s`,
    how: 'sibyl bench control --push-interval 0 (or 1s)',
  });
  rows.push({
    capability: 'urgent updates under a flood',
    measure: 'urgent change → every router applied, p50 / p99',
    without: `${ms(eager.urgentDelayMs.p50)} / ${ms(eager.urgentDelayMs.p99)}`,
    with: `${ms(batched.urgentDelayMs.p50)} / ${ms(batched.urgentDelayMs.p99)}`,
    how: 'sibyl bench control --push-interval 0 (or 1s)',
  });

  say('▶ operator: status writes for five pools churned 20 times a second, interval 0 s and 5 s');
  const scale = {
    pools: 50,
    endpoints: 10,
    durationMs: v.quick ? 10_000 : 20_000,
    changesPerSecond: 20,
    hotPools: 5,
  };
  const unbatched = await runScale({ ...scale, statusInterval: '0s' });
  const batchedWrites = await runScale({ ...scale, statusInterval: '5s' });
  rows.push({
    capability: 'batched status writes',
    measure: 'status writes per minute (≈1,200 slice changes/min on 5 pools)',
    without: `${unbatched.statusWritesPerMinute.toFixed(0)} /min`,
    with: `${batchedWrites.statusWritesPerMinute.toFixed(0)} /min`,
    how: 'sibyl bench scale --pools 50 --endpoints 10 --hot 5 --rate 20 --status-interval 0s (or 5s)',
  });

  say(
    '▶ router: circuit breakers and hedging, each off and on, real routers and faulty backends; overload control',
  );
  const routerArgs = v.quick ? ['--duration', '5s', '--repeat', '1'] : [];
  const router = await runRouterBench(parseRouterBenchArgs([...routerArgs, '--out', ''])!);
  writeFileSync(join(RESULTS, 'router.json'), `${JSON.stringify(router, null, 2)}\n`);
  const cmd = `sibyl bench router ${routerArgs.join(' ')}`.trim();
  for (const c of router.comparisons) {
    const f = (x: LoadFigures) =>
      c.name === 'hedging'
        ? `p99 ${ms(x.p99Ms)}, p99.9 ${ms(x.p999Ms)}, ${(100 * x.extraLoad).toFixed(1)}% extra calls`
        : `${(100 * x.errorRate).toFixed(2)}% errors, p99 ${ms(x.p99Ms)} (all calls ${ms(x.p99AllMs)})`;
    const ratios =
      c.name === 'hedging'
        ? `p99 ${ratio(c.on.p99Ms, c.off.p99Ms)}, p99.9 ${ratio(c.on.p999Ms, c.off.p999Ms)}`
        : `errors ${ratio(c.on.errorRate, c.off.errorRate)}, p99 all calls ${ratio(c.on.p99AllMs, c.off.p99AllMs)}`;
    rows.push({
      capability: c.name === 'hedging' ? 'hedging (router)' : 'circuit breakers (router)',
      measure: c.setup,
      without: f(c.off),
      with: `${f(c.on)}; ${ratios}`,
      how: cmd,
    });
  }
  if (router.overload) {
    const fig = (a: string) => {
      const s = router.overload?.settings.find((x) => x.algorithm === a);
      return s
        ? `${a}: goodput ${(100 * s.goodputShare).toFixed(0)}% of capacity, admitted p99 ${ms(s.admittedP99Ms)} = ${s.admittedRatio.toFixed(2)} × unloaded (${ms(s.unloadedP99Ms)})`
        : '-';
    };
    rows.push({
      capability: 'overload control (router)',
      measure: `twice the capacity: ${router.overload.setup}`,
      without: fig('Gradient2'),
      with: fig('QueueDelay'),
      how: cmd,
    });
  }

  say(
    '▶ cache: hit ratios on a drifting Zipf trace (LRU, sibyl, Belady), latency per tier through the router',
  );
  const cache = await runCacheBench({
    trace: DEFAULT_TRACE,
    capacity: 500,
    ttlMs: 60_000,
    latency: { calls: v.quick ? 500 : 2000, warmup: 500, backendLatencyMs: 2, responseBytes: 512 },
    log: say,
  });
  const hr = cache.result.hitRatio;
  const pc = (x: number) => `${(100 * x).toFixed(1)}%`;
  rows.push({
    capability: 'cache admission and warming',
    measure: `L1 hit ratio at ${cache.result.capacity} entries, same TTL (trace)`,
    without: `${pc(hr.LRU)} LRU`,
    with: `${pc(hr.sibyl)} (Belady MIN ${pc(hr.Belady)})`,
    how: 'sibyl bench cache',
  });
  const lat = cache.result.latencyMs;
  if (lat)
    rows.push({
      capability: 'cache tiers (router)',
      measure: 'p50 of a call through the router',
      without: `${lat.miss.p50.toFixed(2)} ms miss (backend 2 ms)`,
      with: `L1 ${lat.l1.p50.toFixed(2)} ms, L2 ${lat.l2.p50.toFixed(2)} ms, L3 ${lat.l3.p50.toFixed(2)} ms`,
      how: 'sibyl bench cache',
    });

  const md = [
    '# Benchmarks',
    '',
    `Written by \`make bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} CPUs, Node ${process.version}, load average ${loadavg()[0]?.toFixed(1)} when it started. Each row's two figures come from the same run.`,
    '',
    '## Before and after',
    '',
    '| capability | measure | without | with | command |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.capability} | ${r.measure} | ${r.without} | ${r.with} | \`${r.how}\` |`),
    '',
    ...simSection(sim, seeds),
    '## Router: circuit breakers and hedging',
    '',
    '```',
    formatRouterBench(router),
    '```',
    '',
    '## Cache tiers',
    '',
    formatCacheBench(cache.result, cache.details),
    '',
    '## More',
    '',
    `- Every policy on every scenario, with 95% intervals and plots: \`sibyl bench sim --all --seeds ${seeds} --plot\` (\`bench/results/*.json\`, \`*.svg\`).`,
    '- The router against a direct call and nginx `grpc_pass` under ghz: `hack/k8s-tools.sh load && sibyl bench proxy` ([proxy.md](proxy.md)).',
    '- A cache hit with Envoy as the data plane (Envoy → sibyl router) against a miss, Envoy alone and a direct call: `sibyl bench cache --envoy-path` ([cache-envoy.md](cache-envoy.md)).',
    '- The operator at 500 pools × 20 endpoints with 200 simulated xDS clients: `sibyl bench scale` ([scale.md](scale.md)).',
    "- The measurements behind the model's and the Predictive policy's settings: [model.md](model.md).",
    '',
  ].join('\n');
  writeFileSync(v.out as string, md);
  say(md);
  return 0;
}
