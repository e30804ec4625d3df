import { ORACLE } from './engine.js';
import type { ScenarioReport } from './runner.js';
import type { TargetReport } from './targets.js';

/** One of issue 17's targets on one scenario, with how far it is from the line. */
export interface SuiteCheck {
  target: string;
  met: boolean;
  /** Distance to the line in the target's own unit, ≥ 0 when met: the lowest is the worst case. */
  margin: number;
  detail: string;
}

export const P99_TARGET = 'p99All ≤ 1.03 × best baseline';
export const ERRORS_TARGET = 'errors ≤ max(Oracle, best baseline) + 0.1 points';
export const GAP_TARGET = 'closes ≥ 75% of the gap where the Oracle is ≥ 10% better';

const ms = (x: number) => `${x.toFixed(1)}ms`;
const pts = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * Issue 17's three targets for a candidate, read off its evaluateTargets report (the same best baseline,
 * the one with the lowest p99All, and the same gap): p99All within 1.03 × the best baseline; an error
 * rate at most the higher of the Oracle's and the best baseline's plus 0.1 points; and, where the
 * Oracle is at least 10% better than the best baseline, at least 75% of that gap closed. A target that
 * does not apply to the scenario (no Oracle run, or too small a gap) is left out.
 */
export function suiteChecks(report: ScenarioReport, targets: TargetReport): SuiteCheck[] {
  const c = report.policies[targets.candidate];
  const best = targets.best;
  if (!c || !best) return [];
  const out: SuiteCheck[] = [];
  const ratio = c.p99AllMs / best.p99AllMs;
  out.push({
    target: P99_TARGET,
    met: c.p99AllMs <= 1.03 * best.p99AllMs,
    margin: 1.03 - ratio,
    detail: `${ms(c.p99AllMs)} vs ${best.policy} ${ms(best.p99AllMs)} (×${ratio.toFixed(3)})`,
  });
  const oracle = report.policies[ORACLE];
  const bestErrors = report.policies[best.policy]?.errorRate ?? 0;
  if (oracle) {
    const allowed = Math.max(oracle.errorRate, bestErrors) + 0.001;
    out.push({
      target: ERRORS_TARGET,
      met: c.errorRate <= allowed + 1e-12,
      margin: allowed - c.errorRate,
      detail: `${pts(c.errorRate)} vs Oracle ${pts(oracle.errorRate)}, ${best.policy} ${pts(bestErrors)}`,
    });
  }
  if (targets.oracleAdvantage !== undefined && targets.oracleAdvantage >= 0.1) {
    const closed = targets.gapClosed as number;
    out.push({
      target: GAP_TARGET,
      met: closed >= 0.75,
      margin: closed - 0.75,
      detail: `closed ${(100 * closed).toFixed(1)}% of ${ms(best.p99AllMs - (targets.oracleP99AllMs as number))} (Oracle ${(100 * targets.oracleAdvantage).toFixed(1)}% better than ${best.policy})`,
    });
  }
  return out;
}
