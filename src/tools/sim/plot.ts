import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { meanCdf, type ScenarioRuns } from './runner.js';

/**
 * SVG plots of a simulator run, drawn with vega-lite and rendered by vega in Node (no browser):
 * - `sim-p99.svg`: p99All per policy, one panel per scenario (its own scale: figures span decades);
 * - `<scenario>-cdf.svg`: each policy's latency CDF (all calls, a failure at the deadline), and beside
 *   it the tail, the share of calls slower than x on a log scale;
 * - `<scenario>-goodput.svg` for scenarios whose load ramps: calls answered OK per second beside the
 *   offered load, per policy (the collapse without a limiter shows here).
 */

async function render(spec: TopLevelSpec): Promise<string> {
  // one after the other: they share modules, and jest's ESM loader trips over concurrent imports
  const vegaLite = await import('vega-lite');
  const vega = await import('vega');
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const POLICY_ORDER = [
  'Oracle',
  'FleetLeastRequest',
  'RoundRobin',
  'LeastRequest',
  'PeakEwma',
  'Prequal',
  'Predictive',
  'Predictive+model',
];
const color = (policies: string[]) => ({
  field: 'policy',
  type: 'nominal' as const,
  sort: policies,
  scale: { scheme: 'tableau10' },
});

function order(policies: string[]): string[] {
  return [...policies].sort((a, b) => {
    const ia = POLICY_ORDER.indexOf(a);
    const ib = POLICY_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
}

function p99Spec(all: readonly ScenarioRuns[]): TopLevelSpec {
  const values = all.flatMap(({ report }) =>
    Object.entries(report.policies).map(([policy, p]) => ({
      scenario: report.scenario,
      policy,
      p99AllMs: p.p99AllMs,
      lo: p.ci95.p99AllMs[0],
      hi: p.ci95.p99AllMs[1],
    })),
  );
  const policies = order([...new Set(values.map((v) => v.policy))]);
  const seeds = all[0]?.report.seeds.length ?? 1;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `p99 of all calls (failures at the deadline), mean over ${seeds} seed${seeds > 1 ? 's' : ''}, 95% CI`,
    data: { values },
    facet: { field: 'scenario', type: 'nominal', title: null, sort: all.map((r) => r.report.scenario) },
    columns: 4,
    spec: {
      width: 180,
      height: 140,
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'policy', type: 'nominal', sort: policies, axis: { labelAngle: -45, title: null } },
            y: { field: 'p99AllMs', type: 'quantitative', title: 'p99All (ms)' },
            color: { ...color(policies), legend: null },
          },
        },
        {
          mark: { type: 'rule', color: 'black' },
          encoding: {
            x: { field: 'policy', type: 'nominal', sort: policies },
            y: { field: 'lo', type: 'quantitative' },
            y2: { field: 'hi' },
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

function cdfSpec(run: ScenarioRuns): TopLevelSpec {
  const values = Object.entries(run.runs).flatMap(([policy, rs]) =>
    meanCdf(rs).map(({ p, ms }) => ({ policy, p, tail: 1 - p, ms: Math.max(ms, 0.01) })),
  );
  const policies = order(Object.keys(run.runs));
  const x = {
    field: 'ms',
    type: 'quantitative' as const,
    scale: { type: 'log' as const },
    title: 'latency (ms, log)',
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${run.report.scenario}: latency of all calls (failures at the deadline)`,
    data: { values },
    hconcat: [
      {
        width: 320,
        height: 240,
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x,
          y: { field: 'p', type: 'quantitative', title: 'share of calls at or below' },
          color: color(policies),
        },
      },
      {
        width: 320,
        height: 240,
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x,
          y: {
            field: 'tail',
            type: 'quantitative',
            scale: { type: 'log', reverse: true },
            title: 'share of calls slower (log)',
          },
          color: color(policies),
        },
      },
    ],
  } as TopLevelSpec;
}

function goodputSpec(run: ScenarioRuns): TopLevelSpec {
  const values: { policy: string; second: number; rps: number }[] = [];
  for (const [policy, rs] of Object.entries(run.runs)) {
    const seconds = rs[0]?.timeline.ok.length ?? 0;
    for (let s = 0; s < seconds; s++) {
      values.push({
        policy,
        second: s,
        rps: rs.reduce((a, r) => a + (r.timeline.ok[s] ?? 0), 0) / rs.length,
      });
    }
  }
  const first = Object.values(run.runs)[0] ?? [];
  const offered = (first[0]?.timeline.offered ?? []).map((_, s) => ({
    second: s,
    rps: first.reduce((a, r) => a + (r.timeline.offered[s] ?? 0), 0) / first.length,
  }));
  const policies = order(Object.keys(run.runs));
  const cap = run.report.capacityRps;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${run.report.scenario}: calls answered OK per second (by start), offered load dashed, capacity dotted`,
    width: 560,
    height: 260,
    layer: [
      {
        data: { values },
        mark: 'line',
        encoding: {
          x: { field: 'second', type: 'quantitative', title: 'time (s)' },
          y: { field: 'rps', type: 'quantitative', title: 'calls/s' },
          color: color(policies),
        },
      },
      {
        data: { values: offered },
        mark: { type: 'line', strokeDash: [6, 4], color: 'gray' },
        encoding: { x: { field: 'second', type: 'quantitative' }, y: { field: 'rps', type: 'quantitative' } },
      },
      {
        data: { values: [{ cap }] },
        mark: { type: 'rule', strokeDash: [2, 2], color: 'black' },
        encoding: { y: { field: 'cap', type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}

/** Writes every plot for `all` under `dir`; returns the files written (bench/sim.ts loads it with import()). */
// ts-unused-exports:disable-next-line
export async function writePlots(all: readonly ScenarioRuns[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const put = async (name: string, spec: TopLevelSpec) => {
    const file = path.join(dir, name);
    await writeFile(file, await render(spec));
    files.push(file);
  };
  if (all.length > 0)
    await put(all.length === 1 ? `${all[0]!.report.scenario}-p99.svg` : 'sim-p99.svg', p99Spec(all));
  for (const run of all) {
    await put(`${run.report.scenario}-cdf.svg`, cdfSpec(run));
    const first = Object.values(run.runs)[0]?.[0];
    if (first?.peak) await put(`${run.report.scenario}-goodput.svg`, goodputSpec(run));
  }
  return files;
}
