import { simulate, type RunOptions } from '../sim/engine.js';
import type { RunResult } from '../sim/metrics.js';
import type { Scenario } from '../sim/scenario.js';
import type { HedgingSpec, TimeoutSpec } from '../sim/try-policy.js';
import { SibylError } from '../../util/errors.js';

/**
 * `sibyl bench sim --compare hedging|deadlines`: issue 17's hedging and deadline targets measured on
 * the simulator, one policy, the same seeds for every variant.
 *
 * hedging: no hedge; fixed delays at the no-hedge run's p50, p75, p90, p95, p98 and p99 (over all
 * calls, mean over seeds), each at `budgetPercent`; and per-call predicted delays (each call's own
 * predicted quantile at its first try's endpoint) at the same budget. Reports predicted / best fixed
 * on p99 over all calls.
 * deadlines: the pool's fixed timeout (every try has the call's deadline) against predicted per-try
 * deadlines, max(multiplier × predicted p99, floor), with retry on another endpoint.
 */
export type CompareKind = 'hedging' | 'deadlines';

/** The no-hedge run's latency quantiles that become the fixed delays swept. */
const FIXED_DELAY_QUANTILES = [0.5, 0.75, 0.9, 0.95, 0.98, 0.99];

export interface VariantFigures {
  variant: string;
  p50Ms: number;
  p99Ms: number;
  p99AllMs: number;
  errorRate: number;
  /** Hedges and retries over calls. */
  extraShare: number;
}

export interface CompareReport {
  scenario: string;
  kind: CompareKind;
  policy: string;
  seeds: number[];
  variants: VariantFigures[];
  /** hedging: predicted / best fixed p99All; deadlines: predicted / fixed p99All. */
  ratio: number;
  /** The variant the predicted one is compared with. */
  against: string;
}

export interface CompareOptions {
  kind: CompareKind;
  seeds: number;
  /** The policy and its model hooks, as simulate takes them. */
  run: Pick<RunOptions, 'policy' | 'predict' | 'quantiles' | 'balancerConfig'>;
  policyName: string;
  budgetPercent?: number;
  /** Predicted hedge quantiles (default [0.99, 0.95]); the first is compared with the best fixed delay. */
  quantiles?: readonly number[];
  multiplier?: number;
  floorMs?: number;
  say?: (line: string) => void;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function figures(variant: string, rs: readonly RunResult[]): VariantFigures {
  return {
    variant,
    p50Ms: mean(rs.map((r) => r.p50Ms)),
    p99Ms: mean(rs.map((r) => r.p99Ms)),
    p99AllMs: mean(rs.map((r) => r.p99AllMs)),
    errorRate: mean(rs.map((r) => r.errorRate)),
    extraShare: mean(rs.map((r) => r.hedgeRate + r.retryRate)),
  };
}

export function compareTries(base: Scenario, o: CompareOptions): CompareReport {
  if (base.hedging || base.timeout) {
    throw new SibylError('ERR_USAGE', `${base.name}: --compare sets hedging and timeout itself; drop them`);
  }
  const seeds = Array.from({ length: o.seeds }, (_, i) => base.seed + i);
  const say = o.say ?? (() => undefined);
  const runAll = (sc: Scenario, variant: string): { f: VariantFigures; rs: RunResult[] } => {
    const t0 = performance.now();
    const rs = seeds.map((seed) => simulate(sc, { ...o.run, seed }));
    const f = figures(variant, rs);
    say(
      `  ${variant.padEnd(22)} p50 ${f.p50Ms.toFixed(1)}  p99 ${f.p99Ms.toFixed(1)}  p99All ${f.p99AllMs.toFixed(1)}  errors ${(100 * f.errorRate).toFixed(2)}%  extra ${(100 * f.extraShare).toFixed(2)}%  (${((performance.now() - t0) / 1000).toFixed(0)}s)`,
    );
    return { f, rs };
  };
  say(`${base.name} (${o.kind}, ${o.policyName}, seeds ${seeds.join(',')})`);
  const variants: VariantFigures[] = [];
  let ratio: number;
  let against: string;
  if (o.kind === 'hedging') {
    const budgetPercent = o.budgetPercent ?? 5;
    const none = runAll(base, 'no hedge');
    variants.push(none.f);
    const fixed: VariantFigures[] = [];
    for (const p of FIXED_DELAY_QUANTILES) {
      // the delay at the no-hedge run's p-quantile over all calls (its CDF, mean over seeds)
      const k = Math.round(p * 100) - 1;
      const delayMs = Math.round(100 * mean(none.rs.map((r) => r.cdf[k] as number))) / 100;
      const hedging: HedgingSpec = { delayMs, quantile: 0.95, budgetPercent };
      fixed.push(runAll({ ...base, hedging }, `fixed ${delayMs}ms (p${p * 100})`).f);
    }
    variants.push(...fixed);
    const predicted: VariantFigures[] = [];
    for (const q of o.quantiles ?? [0.99, 0.95]) {
      const hedging: HedgingSpec = { delayMs: 'Predicted', quantile: q, budgetPercent };
      predicted.push(runAll({ ...base, hedging }, `predicted q${q}`).f);
    }
    variants.push(...predicted);
    const best = fixed.reduce((a, b) => (b.p99AllMs < a.p99AllMs ? b : a));
    ratio = (predicted[0] as VariantFigures).p99AllMs / best.p99AllMs;
    against = best.variant;
  } else {
    const fixed = runAll(base, 'fixed timeout');
    const timeout: TimeoutSpec = {
      predicted: { multiplier: o.multiplier ?? 2, floorMs: o.floorMs ?? 10 },
      retryBudgetPercent: 20,
    };
    const predicted = runAll({ ...base, timeout }, 'predicted deadline');
    variants.push(fixed.f, predicted.f);
    ratio = predicted.f.p99AllMs / fixed.f.p99AllMs;
    against = fixed.f.variant;
  }
  say(`  => predicted / ${against}: p99All ratio ${ratio.toFixed(3)}\n`);
  return { scenario: base.name, kind: o.kind, policy: o.policyName, seeds, variants, ratio, against };
}
