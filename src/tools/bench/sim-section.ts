import { verdict } from '../sim/report.js';
import type { SimBenchResult } from './sim.js';

const f1 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));

/**
 * bench/results/README.md's simulator section (written by `make bench`, src/tools/bench/all.ts): p99 over
 * all calls per policy per scenario, Predictive's targets with every miss spelt out, and the plots
 * `simulateFiles` wrote beside it, embedded as images.
 */
export function simSection(results: readonly SimBenchResult[], seeds: number): string[] {
  const policies = [...new Set(results.flatMap((r) => Object.keys(r.runs.report.policies)))];
  const out = [
    '## Simulator: every policy on every scenario',
    '',
    `\`sibyl bench sim --all --seeds ${seeds} --plot\`: p99 over all calls in ms (a failed or timed-out call ` +
      `counts at the deadline), mean over ${seeds} seeds; error rate in brackets where any. ` +
      '`Predictive` is the policy with its built-in scoring (what a router runs without a model); ' +
      '`Predictive+model` scores with the shipped model (models/latency, what a router runs once the ' +
      "operator pushes it). The targets are issue 7's, for `Predictive`. `EnvoyLeastRequest` and " +
      "`WeightedRandom` are Envoy's weighted LEAST_REQUEST and a stock proxyless client's weighted pick, fed " +
      "the endpoint weights the operator pushes; the Envoy targets are issue 16's, for `EnvoyLeastRequest`.",
    '',
    `| scenario | ${policies.join(' | ')} | targets | Envoy targets |`,
    `| --- | ${policies.map(() => '---').join(' | ')} | --- | --- |`,
  ];
  const misses: string[] = [];
  for (const r of results) {
    const rep = r.runs.report;
    const cells = policies.map((p) => {
      const s = rep.policies[p];
      if (!s) return '-';
      return s.errorRate > 0.0005 ? `${f1(s.p99AllMs)} (${(100 * s.errorRate).toFixed(2)}%)` : f1(s.p99AllMs);
    });
    for (const t of [r.targets, r.dataPlaneTargets]) {
      for (const c of t?.checks ?? []) {
        if (c.met === false) misses.push(`- ${rep.scenario}, ${t!.candidate}: ${c.target}: ${c.detail}`);
      }
    }
    const envoy = r.dataPlaneTargets ? verdict(r.dataPlaneTargets) : '-';
    out.push(`| ${rep.scenario} | ${cells.join(' | ')} | ${verdict(r.targets)} | ${envoy} |`);
  }
  out.push('', misses.length === 0 ? 'Every target met.' : 'Targets missed:', ...misses, '');
  out.push('![p99 over all calls per policy per scenario, 95% intervals](sim-p99.svg)', '');
  for (const r of results) {
    const name = r.runs.report.scenario;
    out.push(`### ${name}`, '', `![${name}: latency CDFs](${name}-cdf.svg)`, '');
    if (r.runs.report.policies.Predictive?.peak) {
      out.push(`![${name}: goodput over time](${name}-goodput.svg)`, '');
    }
  }
  return out;
}
