import type { ScenarioReport } from './runner.js';
import type { TargetReport } from './targets.js';

/** Plain-text tables for `sibyl bench sim`. */

/** Columns padded to their widest cell, the first left-aligned; a rule under the head. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

/** One scenario: a row per policy (means over seeds; p99All with its 95% interval when seeds > 1). */
export function formatScenario(report: ScenarioReport): string {
  const multi = report.seeds.length > 1;
  const head = [
    'policy',
    'p50',
    'p99',
    'p99.9',
    multi ? 'p99All (95% CI)' : 'p99All',
    'mean',
    'errors',
    'goodput/s',
    'maxInflight',
  ];
  const rows = Object.entries(report.policies).map(([name, p]) => {
    const [lo, hi] = p.ci95.p99AllMs;
    return [
      name,
      f1(p.p50Ms),
      f1(p.p99Ms),
      f1(p.p999Ms),
      multi ? `${f1(p.p99AllMs)} [${f1(lo)}, ${f1(hi)}]` : f1(p.p99AllMs),
      f1(p.meanMs),
      `${(100 * p.errorRate).toFixed(2)}%`,
      p.goodputRps.toFixed(0),
      p.maxInflight.toFixed(0),
    ];
  });
  const seeds = multi ? `seeds ${report.seeds[0]}–${report.seeds.at(-1)}` : `seed ${report.seeds[0]}`;
  const title = `${report.scenario} (${seeds}; capacity ${report.capacityRps.toFixed(0)} calls/s; latencies in ms)`;
  const lines = [title, table(head, rows)];
  const peaks = Object.entries(report.policies).filter(([, p]) => p.peak);
  if (peaks.length > 0) {
    const p0 = peaks[0]![1].peak!;
    lines.push(
      '',
      `steady overload, calls started ${p0.fromS}–${p0.toS}s:`,
      table(
        [
          'policy',
          'offered/s',
          'goodput/s',
          'of capacity',
          'errors',
          'shed',
          'admitted p99',
          'unloaded p99',
          '× unloaded',
          'p99All',
        ],
        peaks.map(([name, p]) => [
          name,
          p.peak!.offeredRps.toFixed(0),
          p.peak!.goodputRps.toFixed(0),
          `${((100 * p.peak!.goodputRps) / report.capacityRps).toFixed(1)}%`,
          `${(100 * p.peak!.errorRate).toFixed(1)}%`,
          `${(100 * p.peak!.shedRate).toFixed(1)}%`,
          f1(p.peak!.p99Ms),
          p.unloadedP99Ms === undefined ? '-' : f1(p.unloadedP99Ms),
          p.unloadedP99Ms === undefined ? '-' : (p.peak!.p99Ms / p.unloadedP99Ms).toFixed(2),
          f1(p.peak!.p99AllMs),
        ]),
      ),
    );
  }
  return lines.join('\n');
}

export function formatTargets(t: TargetReport): string {
  if (t.checks.length === 0) return `targets: ${t.candidate} not run`;
  const lines = [`targets for ${t.candidate}:`];
  for (const c of t.checks) {
    const mark = c.met === undefined ? 'info' : c.met ? 'met ' : 'MISS';
    lines.push(`  [${mark}] ${c.target}: ${c.detail}`);
  }
  if (t.gapClosed !== undefined && !t.checks.some((c) => c.target.startsWith('closes'))) {
    lines.push(
      `  [info] Oracle only ${(100 * (t.oracleAdvantage ?? 0)).toFixed(1)}% better than the best baseline; gap closed ${(100 * t.gapClosed).toFixed(0)}%`,
    );
  }
  return lines.join('\n');
}

/** "all N met", "M of N missed", or "-" when none was judged. */
export function verdict(t: TargetReport): string {
  const missed = t.checks.filter((c) => c.met === false).length;
  const judged = t.checks.filter((c) => c.met !== undefined).length;
  return judged === 0 ? '-' : missed === 0 ? `all ${judged} met` : `${missed} of ${judged} missed`;
}

/**
 * One line per scenario: p99All per policy, the gap closed, and the targets missed (Predictive's, and
 * EnvoyLeastRequest's where it ran).
 */
export function formatSummary(
  entries: { report: ScenarioReport; targets: TargetReport; dataPlaneTargets?: TargetReport }[],
  policies: readonly string[],
): string {
  const dataPlane = entries.some((e) => e.dataPlaneTargets);
  const head = ['scenario', ...policies, 'gap closed', 'targets', ...(dataPlane ? ['Envoy targets'] : [])];
  const rows = entries.map(({ report, targets, dataPlaneTargets }) => {
    return [
      report.scenario,
      ...policies.map((p) => f1(report.policies[p]?.p99AllMs ?? NaN)),
      targets.gapClosed === undefined ? '-' : `${(100 * targets.gapClosed).toFixed(0)}%`,
      verdict(targets),
      ...(dataPlane ? [dataPlaneTargets ? verdict(dataPlaneTargets) : '-'] : []),
    ];
  });
  return ['p99All (ms, mean over seeds) per policy:', table(head, rows)].join('\n');
}
