import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type PolicySummary } from '../sim/runner.js';
import { parseScenario } from '../sim/scenario.js';
import { runControlBench } from './control.js';
import { runScale } from './scale.js';

/**
 * `make bench` / `sibyl bench all`: runs the benchmarks that need no external load tool and writes
 * bench/results/README.md, which opens with a before/after table — each capability's figure without it
 * and with it, measured side by side in the same run. `sibyl bench proxy` (ghz and nginx) is run on its
 * own: its latest figures are in bench/results/proxy.md.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

interface Row {
  capability: string;
  measure: string;
  without: string;
  with: string;
  how: string;
}

function scenario(name: string, seeds: number, policies: string[]): Record<string, PolicySummary> {
  const file = join(ROOT, 'bench/scenarios', `${name}.json`);
  const s = parseScenario(JSON.parse(readFileSync(file, 'utf8')), file);
  return runScenario(s, { seeds, policies }).report.policies;
}

const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(1)} ms`);

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string', default: '2' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, 'bench/results/README.md') },
    },
  });
  const seeds = Number(v.seeds);
  const rows: Row[] = [];
  const say = (l: string) => console.log(l);

  say('▶ simulator: heterogeneous pool, RoundRobin and PeakEwma against Predictive');
  const het = scenario('heterogeneous', seeds, ['RoundRobin', 'PeakEwma', 'Predictive']);
  rows.push({
    capability: 'predictive balancing',
    measure: 'p99 over all calls, heterogeneous pool (simulator)',
    without: `${ms(het.RoundRobin?.p99AllMs)} RoundRobin, ${ms(het.PeakEwma?.p99AllMs)} PeakEwma`,
    with: ms(het.Predictive?.p99AllMs),
    how: `sibyl bench sim --scenario bench/scenarios/heterogeneous.json --seeds ${seeds}`,
  });

  say('▶ simulator: a backend that fails fast, with failures priced or not');
  const sink = scenario('sinkhole', seeds, ['LeastRequest', 'Predictive']);
  rows.push({
    capability: 'failure-aware picks (breaker pricing)',
    measure: 'p99 over all calls, sinkhole (simulator)',
    without: `${ms(sink.LeastRequest?.p99AllMs)} LeastRequest`,
    with: `${ms(sink.Predictive?.p99AllMs)} Predictive`,
    how: `sibyl bench sim --scenario bench/scenarios/sinkhole.json --seeds ${seeds}`,
  });

  say('▶ simulator: overload ramp to 2× capacity, limiter off and on');
  const off = scenario('overload-ramp', seeds, ['Predictive']).Predictive;
  const on = scenario('overload-ramp-limited', seeds, ['Predictive']).Predictive;
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

  for (const [capability, why] of [
    [
      'circuit breakers (router)',
      'measured through the simulator row above; a router-level run is not built yet',
    ],
    ['hedging', 'not measured yet'],
    ['cache tiers and warming', 'not measured yet (`sibyl bench cache` is not built)'],
  ] as const) {
    rows.push({ capability, measure: why, without: '-', with: '-', how: '-' });
  }

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
    '## More',
    '',
    '- Every policy on every scenario, with 95% intervals and plots: `sibyl bench sim --all --seeds 3 --plot` (`bench/results/*.json`, `*.svg`).',
    '- The router against a direct call and nginx `grpc_pass` under ghz: `hack/k8s-tools.sh load && sibyl bench proxy` ([proxy.md](proxy.md)).',
    '- The operator at 500 pools × 20 endpoints: `sibyl bench scale`.',
    '',
  ].join('\n');
  writeFileSync(v.out as string, md);
  say(md);
  return 0;
}
