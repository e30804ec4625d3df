import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { run } from '../../../../src/tools/bench/sim.js';
import { quantile } from '../../../../src/tools/sim/metrics.js';
import type { ScenarioReport } from '../../../../src/tools/sim/runner.js';
import { meanInterval } from '../../../../src/tools/sim/stats.js';
import { evaluateTargets } from '../../../../src/tools/sim/targets.js';
import { formatScenario } from '../../../../src/tools/sim/report.js';
import { scenario } from './helpers.js';

function report(p99: Record<string, number>, errorRate: Record<string, number> = {}): ScenarioReport {
  const policies: ScenarioReport['policies'] = {};
  for (const [name, v] of Object.entries(p99)) {
    policies[name] = {
      p50Ms: 1,
      p99Ms: v,
      p999Ms: v,
      p99AllMs: v,
      meanMs: 1,
      errorRate: errorRate[name] ?? 0,
      goodputRps: 1,
      maxInflight: 1,
      share: [],
      ci95: {} as never,
    };
  }
  return { scenario: 't', policies, seeds: [1], capacityRps: 1 };
}

describe('figures and targets', () => {
  it('takes nearest-rank percentiles and a t interval over seeds', () => {
    const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile([], 0.5)).toBeNaN();
    const iv = meanInterval([10, 12, 14]);
    expect(iv.mean).toBe(12);
    expect(iv.hi - iv.mean).toBeCloseTo((4.303 * 2) / Math.sqrt(3), 3);
    expect(meanInterval([5])).toEqual({ mean: 5, lo: 5, hi: 5 });
  });

  it('judges the gap to the Oracle on p99All', () => {
    const t = evaluateTargets(
      report({ Oracle: 40, RoundRobin: 200, Prequal: 60, Predictive: 48 }),
      scenario(),
    );
    expect(t.best).toEqual({ policy: 'Prequal', p99AllMs: 60 });
    expect(t.gapClosed).toBeCloseTo(0.6, 9);
    expect(t.checks.every((c) => c.met)).toBe(true);
    const miss = evaluateTargets(
      report({ Oracle: 40, Prequal: 60, Predictive: 55 }, { Oracle: 0, Predictive: 0.002 }),
      scenario(),
    );
    expect(miss.checks.filter((c) => !c.met).map((c) => c.target)).toEqual([
      'p99All ≤ 1.3 × Oracle',
      'error rate ≤ Oracle + 0.1 points',
      'closes ≥ half the gap to the Oracle',
    ]);
  });
});

describe('overload targets (issue 18)', () => {
  const ramped = scenario({
    load: { utilization: 0.5, ramp: { to: 2, fromS: 2, toS: 5 } },
    concurrency: {},
  });
  /** Predictive's steady overload: goodput (capacity 100) and admitted p99, against 20 ms unloaded. */
  const overload = (goodputRps: number, p99Ms: number): ScenarioReport => {
    const r = report({ Predictive: 1000 });
    r.capacityRps = 100;
    const p = r.policies.Predictive!;
    p.unloadedP99Ms = 20;
    p.ci95 = { p99AllMs: [1000, 1000] } as never;
    p.peak = {
      fromS: 5,
      toS: 10,
      offeredRps: 200,
      goodputRps,
      p99Ms,
      p99AllMs: 1000,
      errorRate: 0.5,
      shedRate: 0.5,
      shedMaxMs: 0,
    };
    return r;
  };
  const verdicts = (r: ScenarioReport) =>
    Object.fromEntries(evaluateTargets(r, ramped).checks.map((c) => [c.target, c.met]));

  it('holds goodput at 90% of capacity and admitted p99 at 1.5 × the unloaded p99', () => {
    expect(verdicts(overload(90, 30))).toEqual({
      'overload: goodput ≥ 90% of capacity': true,
      'overload: admitted p99 ≤ 1.5 × unloaded p99': true,
      'overload: shed calls answered in < 1 ms': true,
    });
    const missed = verdicts(overload(89, 30.1));
    expect(missed['overload: goodput ≥ 90% of capacity']).toBe(false);
    expect(missed['overload: admitted p99 ≤ 1.5 × unloaded p99']).toBe(false);
  });

  it('prints admitted p99 beside goodput and errors, with its ratio to the unloaded p99', () => {
    const table = formatScenario(overload(95, 27));
    const [head, , row] = table
      .split('\n')
      .slice(table.split('\n').findIndex((l) => l.startsWith('steady')) + 1);
    expect(head!.split(/\s{2,}/)).toEqual([
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
    ]);
    expect(row!.split(/\s{2,}/)).toEqual([
      'Predictive',
      '200',
      '95',
      '95.0%',
      '50.0%',
      '50.0%',
      '27.0',
      '20.0',
      '1.35',
      '1000.0',
    ]);
  });
});

describe('sibyl bench sim', () => {
  const file = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sim-cli-'));
    const f = path.join(dir, 'small.json');
    const { name: _n, ...rest } = scenario({ durationS: 4 });
    await writeFile(f, JSON.stringify({ ...rest, name: 'small' }));
    return { dir, f };
  };

  it('prints the fixed JSON shape with --json', async () => {
    const { f } = await file();
    const log = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await run(['--scenario', f, '--policies', 'RoundRobin,Oracle', '--seeds', '2', '--json'])).toBe(
        0,
      );
      const out = JSON.parse(String(log.mock.calls.at(-1)?.[0])) as ScenarioReport;
      expect(out.scenario).toBe('small');
      expect(Object.keys(out.policies)).toEqual(['RoundRobin', 'Oracle']);
      expect(Object.keys(out.policies.Oracle!)).toEqual(
        expect.arrayContaining([
          'p50Ms',
          'p99Ms',
          'p999Ms',
          'p99AllMs',
          'meanMs',
          'errorRate',
          'goodputRps',
          'maxInflight',
          'share',
        ]),
      );
      expect(out.policies.Oracle!.share).toHaveLength(4);
      expect(out.seeds).toEqual([7, 8]);
    } finally {
      log.mockRestore();
    }
  });

  it('refuses an unknown policy and a bad --seeds', async () => {
    const { f } = await file();
    await expect(run(['--scenario', f, '--policies', 'Nope'])).rejects.toThrow(/unknown policy "Nope"/);
    await expect(run(['--scenario', f, '--seeds', '0'])).rejects.toThrow(/--seeds "0"/);
    await expect(run([])).rejects.toThrow(/give --scenario FILE or --all/);
  });

  it('writes SVG plots with --plot', async () => {
    const { dir, f } = await file();
    const log = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const out = path.join(dir, 'results');
      expect(await run(['--scenario', f, '--policies', 'RoundRobin,Oracle', '--plot', '--out', out])).toBe(0);
      expect((await readdir(out)).sort()).toEqual(['small-cdf.svg', 'small-p99.svg', 'small.json']);
      expect(await readFile(path.join(out, 'small-cdf.svg'), 'utf8')).toMatch(/^<svg/);
    } finally {
      log.mockRestore();
    }
  });
});
