import { predictedTryTimeoutMs } from '../../api/predicted-timeout.js';
import type { PredictedTimeoutSpec } from '../../api/resolve.js';
import type { Checker } from './checker.js';

/**
 * Hedging and per-try deadlines for simulated calls (issue 17, "Hedges from predictions" and
 * "Deadlines from predictions"): the pure rules, apart from the engine that applies them.
 *
 * A hedge ("The Tail at Scale", Dean & Barroso 2013): `delayMs` after a call's first try, if it has no
 * answer and the router's hedge budget allows, a copy goes to another endpoint; the first answer wins
 * and the other try is cancelled. `delayMs` is fixed, or "Predicted": the call's own predicted
 * `quantile` latency at the endpoint its first try went to (the model's per-call quantile,
 * src/model/quantiles.ts; why 0.99 by default: src/router/hedge-delay.ts).
 *
 * A per-try deadline (the seed's "ML query optimiser"; spec.timeout.predicted in the BackendPool API):
 * each try gets max(multiplier × its predicted p99, floor), capped at ceiling and at what is left of
 * the call's own deadline. At it the try is cancelled and retried on an endpoint the call has not
 * tried, when the router's retry budget allows; when no retry can replace it, the try runs on to the
 * call's deadline (cancelling a try nothing replaces could only turn a late answer into a failure).
 */
export interface HedgingSpec {
  /** ms after the first try, or 'Predicted'. */
  delayMs: number | 'Predicted';
  /** With 'Predicted': the quantile of the call's predicted latency (default 0.99, as the API's). */
  quantile: number;
  /** Hedges are at most this share of the calls, in percent (a token bucket per router; default 5). */
  budgetPercent: number;
}

export interface TimeoutSpec {
  predicted?: PredictedTimeoutSpec;
  /** Retries after a per-try deadline add at most this share of the calls, in percent (default 20). */
  retryBudgetPercent: number;
}

/** The hedge delay for a call, ms from its first try; undefined: no hedge (no prediction for it). */
export function hedgeDelayMs(spec: HedgingSpec, predictedMs: number | undefined): number | undefined {
  if (spec.delayMs !== 'Predicted') return spec.delayMs;
  return predictedMs !== undefined && Number.isFinite(predictedMs) && predictedMs >= 0
    ? predictedMs
    : undefined;
}

/**
 * A try's deadline, ms from its start: max(multiplier × predicted p99, floor), capped at ceiling and
 * at `callLeftMs` (what is left of the call's deadline). Without a prediction (or a predicted
 * section), the call's own: `callLeftMs`.
 */
export function tryDeadlineMs(
  spec: PredictedTimeoutSpec | undefined,
  predictedP99Ms: number | undefined,
  callLeftMs: number,
): number {
  if (!spec || predictedP99Ms === undefined || !Number.isFinite(predictedP99Ms)) return callLeftMs;
  return Math.min(predictedTryTimeoutMs(spec, predictedP99Ms), callLeftMs);
}

/** Parses a scenario's optional `hedging` section (bench/scenarios/README.md). */
export function parseHedging(c: Checker, v: unknown): HedgingSpec {
  const p = 'hedging';
  const o = c.object(v, p, ['delayMs', 'quantile', 'budgetPercent']);
  const delayMs =
    o.delayMs === 'Predicted' ? 'Predicted' : c.number(o, 'delayMs', p, { min: 0, max: 3_600_000 });
  return {
    delayMs,
    quantile: c.number(o, 'quantile', p, { min: 0.5, max: 0.999, fallback: 0.99 }),
    budgetPercent: c.number(o, 'budgetPercent', p, { min: 0, max: 100, fallback: 5 }),
  };
}

/** Parses a scenario's optional `timeout` section (bench/scenarios/README.md). */
export function parseTimeout(c: Checker, v: unknown): TimeoutSpec {
  const p = 'timeout';
  const o = c.object(v, p, ['predicted', 'retryBudgetPercent']);
  const out: TimeoutSpec = {
    retryBudgetPercent: c.number(o, 'retryBudgetPercent', p, { min: 0, max: 100, fallback: 20 }),
  };
  if (o.predicted !== undefined) {
    const pp = `${p}.predicted`;
    const po = c.object(o.predicted, pp, ['multiplier', 'floorMs', 'ceilingMs']);
    const multiplier = c.number(po, 'multiplier', pp, { min: 1, max: 100, fallback: 2 });
    const floorMs = c.number(po, 'floorMs', pp, { above: 0, fallback: 10 });
    const ceiling = c.optionalNumber(po, 'ceilingMs', pp, { above: 0 });
    if (ceiling !== undefined && ceiling < floorMs)
      c.fail(`${pp}.ceilingMs`, `must not be below floorMs (${floorMs})`, ceiling);
    out.predicted = { multiplier, floorMs, ...(ceiling !== undefined ? { ceilingMs: ceiling } : {}) };
  }
  return out;
}
