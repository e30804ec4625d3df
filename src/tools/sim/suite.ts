import { FAMILIES, type GeneratedScenario } from './generate.js';
import { runScenario, type RunScenarioOptions, type ScenarioReport } from './runner.js';
import { table } from './report.js';
import { parseScenario, type Scenario } from './scenario.js';
import { ERRORS_TARGET, GAP_TARGET, P99_TARGET, suiteChecks, type SuiteCheck } from './suite-targets.js';
import { evaluateTargets, type TargetReport } from './targets.js';

/** One generated scenario run: its report, and per candidate the project's targets and issue 17's. */
export interface SuiteScenario {
  generated: GeneratedScenario;
  scenario: Scenario;
  report: ScenarioReport;
  targets: Record<string, TargetReport>;
  checks: Record<string, SuiteCheck[]>;
}

export interface SuiteOptions extends Pick<RunScenarioOptions, 'policies' | 'seeds' | 'variants'> {
  /** The rows judged against the targets (Predictive, Predictive+model). */
  candidates: readonly string[];
}

/** Runs one generated scenario through every policy, and judges each candidate. */
export function runSuiteScenario(g: GeneratedScenario, o: SuiteOptions): SuiteScenario {
  const scenario = parseScenario(g.file, g.file.name);
  const { report } = runScenario(scenario, o);
  const targets: Record<string, TargetReport> = {};
  const checks: Record<string, SuiteCheck[]> = {};
  for (const c of o.candidates) {
    if (!report.policies[c]) continue;
    targets[c] = evaluateTargets(report, scenario, c);
    checks[c] = suiteChecks(report, targets[c]);
  }
  return { generated: g, scenario, report, targets, checks };
}

/** A scenario where a target came out worst for a candidate. */
export interface WorstCase {
  scenario: string;
  family: string;
  met: boolean;
  detail: string;
}

/** How often one candidate met one target over the suite. */
export interface TargetShare {
  candidate: string;
  target: string;
  /** True for issue 17's three targets; false for the project's own (evaluateTargets). */
  issue: boolean;
  /** Scenarios where the target applies, and where it was met. */
  judged: number;
  met: number;
  byFamily: Record<string, { judged: number; met: number }>;
  /**
   * Issue 17's targets: the scenario with the lowest margin, met or not. The project's targets: of the
   * scenarios that miss it, the one where the candidate's p99All is highest over the best baseline's.
   */
  worst?: WorstCase;
}

const ISSUE_TARGETS = [P99_TARGET, ERRORS_TARGET, GAP_TARGET];

/** Per candidate and target, the share of scenarios meeting it and the worst case. */
export function summariseSuite(
  results: readonly SuiteScenario[],
  candidates: readonly string[],
): TargetShare[] {
  const out: TargetShare[] = [];
  for (const candidate of candidates) {
    const rows = new Map<string, TargetShare & { score: number }>();
    const row = (target: string, issue: boolean) => {
      let r = rows.get(target);
      if (!r) {
        const byFamily = Object.fromEntries(FAMILIES.map((f) => [f, { judged: 0, met: 0 }]));
        r = { candidate, target, issue, judged: 0, met: 0, byFamily, score: Infinity };
        rows.set(target, r);
      }
      return r;
    };
    for (const t of ISSUE_TARGETS) row(t, true);
    for (const res of results) {
      const family = res.generated.family;
      const note = (r: TargetShare & { score: number }, met: boolean, score: number, detail: string) => {
        r.judged++;
        r.byFamily[family]!.judged++;
        if (met) {
          r.met++;
          r.byFamily[family]!.met++;
        }
        if (score < r.score) {
          r.score = score;
          r.worst = { scenario: res.report.scenario, family, met, detail };
        }
      };
      for (const c of res.checks[candidate] ?? []) note(row(c.target, true), c.met, c.margin, c.detail);
      const t = res.targets[candidate];
      const ratio = t?.best ? (res.report.policies[candidate]?.p99AllMs ?? 0) / t.best.p99AllMs : 0;
      for (const c of t?.checks ?? []) {
        if (c.met === undefined || ISSUE_TARGETS.includes(c.target)) continue;
        note(row(c.target, false), c.met, c.met ? Infinity : -ratio, c.detail);
      }
    }
    for (const { score: _score, ...r } of rows.values()) out.push(r);
  }
  return out;
}

const share = (met: number, judged: number) =>
  judged === 0 ? '-' : `${met}/${judged} ${((100 * met) / judged).toFixed(1)}%`;

/** The suite's tables: shares per target and candidate, issue 17's per family, and the worst cases. */
export function formatSuite(
  shares: readonly TargetShare[],
  candidates: readonly string[],
  fileOf: (scenario: string) => string | undefined,
): string {
  const targets = [...new Set(shares.map((s) => s.target))];
  const find = (c: string, t: string) => shares.find((s) => s.candidate === c && s.target === t);
  const lines = [
    'share of scenarios meeting each target (issue 17 first; the rest are the project targets):',
    table(
      ['target', ...candidates],
      targets.map((t) => [
        `${find(candidates[0]!, t)?.issue ? '*' : ' '} ${t}`,
        ...candidates.map((c) => {
          const s = find(c, t);
          return s ? share(s.met, s.judged) : '-';
        }),
      ]),
    ),
    '',
    `issue 17's targets per family (${candidates.join(' | ')}):`,
    table(
      ['family', ...ISSUE_TARGETS],
      FAMILIES.map((f) => [
        f,
        ...ISSUE_TARGETS.map((t) =>
          candidates
            .map((c) => {
              const b = find(c, t)?.byFamily[f];
              return b && b.judged > 0 ? `${b.met}/${b.judged}` : '-';
            })
            .join(' | '),
        ),
      ]),
    ),
    '',
    'worst cases:',
  ];
  for (const s of shares) {
    if (!s.worst) continue;
    const file = fileOf(s.worst.scenario);
    lines.push(
      `  ${s.candidate}, ${s.target}: ${s.worst.met ? 'met' : 'MISSED'} in ${s.worst.scenario}: ${s.worst.detail}${file ? ` (${file})` : ''}`,
    );
  }
  return lines.join('\n');
}
