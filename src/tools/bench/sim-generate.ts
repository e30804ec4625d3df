import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateScenarios } from '../sim/generate.js';
import type { PolicyVariant } from '../sim/runner.js';
import {
  formatSuite,
  runSuiteScenario,
  summariseSuite,
  type SuiteScenario,
  type TargetShare,
} from '../sim/suite.js';

export interface GenerateOptions {
  count: number;
  seed: number;
  policies: readonly string[];
  seeds: number;
  variants: Readonly<Record<string, PolicyVariant>>;
  candidates: readonly string[];
  /** Where the worst cases' scenario files and the suite's JSON go. */
  out: string;
  /** Progress and tables. */
  say: (line: string) => void;
}

/** `sibyl bench sim --generate N --seed S --json`: the shares, the worst cases' files, and every scenario's figures. */
export interface SuiteResult {
  seed: number;
  count: number;
  seeds: number;
  policies: readonly string[];
  shares: TargetShare[];
  /** Scenario name → the file written for it (the worst cases only). */
  files: Record<string, string>;
  scenarios: {
    scenario: string;
    family: string;
    p99AllMs: Record<string, number>;
    errorRate: Record<string, number>;
    gapClosed: Record<string, number | undefined>;
  }[];
}

/**
 * Draws `count` scenarios from the families (src/tools/sim/generate.ts), runs each through every policy,
 * judges the candidates, and writes each worst case's scenario file under `out` (so `sibyl bench sim
 * --scenario FILE` reruns it with the same figures at the same --seeds), with the whole result as
 * suite-<seed>.json.
 */
export async function runGenerated(o: GenerateOptions): Promise<SuiteResult> {
  const results: SuiteScenario[] = [];
  for (const g of generateScenarios(o.count, o.seed)) {
    const t0 = performance.now();
    const r = runSuiteScenario(g, o);
    results.push(r);
    const missed = o.candidates
      .map((c) => `${c} ${(r.checks[c] ?? []).filter((k) => !k.met).length} missed`)
      .join(', ');
    o.say(
      `[${results.length}/${o.count}] ${g.file.name}: ${missed} (${((performance.now() - t0) / 1000).toFixed(1)}s)`,
    );
  }
  const shares = summariseSuite(results, o.candidates);
  await mkdir(o.out, { recursive: true });
  const files: Record<string, string> = {};
  for (const s of shares) {
    const name = s.worst?.scenario;
    if (!name || files[name]) continue;
    const r = results.find((x) => x.report.scenario === name) as SuiteScenario;
    files[name] = path.join(o.out, `${name}.json`);
    await writeFile(files[name], `${JSON.stringify(r.generated.file, null, 2)}\n`);
  }
  const suite: SuiteResult = {
    seed: o.seed,
    count: o.count,
    seeds: o.seeds,
    policies: o.policies,
    shares,
    files,
    scenarios: results.map((r) => {
      const pick = (f: (p: SuiteScenario['report']['policies'][string]) => number) =>
        Object.fromEntries(Object.entries(r.report.policies).map(([k, p]) => [k, f(p)]));
      return {
        scenario: r.report.scenario,
        family: r.generated.family,
        p99AllMs: pick((p) => p.p99AllMs),
        errorRate: pick((p) => p.errorRate),
        gapClosed: Object.fromEntries(o.candidates.map((c) => [c, r.targets[c]?.gapClosed])),
      };
    }),
  };
  const summary = path.join(o.out, `suite-${o.seed}.json`);
  await writeFile(summary, `${JSON.stringify(suite, null, 2)}\n`);
  o.say(
    `\n${o.count} generated scenarios, seed ${o.seed}, ${o.seeds} seed(s) each\n${formatSuite(shares, o.candidates, (n) => files[n])}`,
  );
  o.say(`wrote ${[...Object.values(files), summary].join(', ')}`);
  return suite;
}
