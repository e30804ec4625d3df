import { predictedTryTimeoutMs } from '../api/predicted-timeout.js';
import type { PredictedTimeoutSpec } from '../api/resolve.js';

/**
 * Each try's deadline from the pool's spec.timeout.predicted (issue 17, "Deadlines from predictions";
 * the seed's query optimiser: timeout = max(multiplier × predicted latency, floor)):
 *
 *   deadline = min(max(multiplier × p99, floor), ceiling)      (src/api/predicted-timeout.ts)
 *
 * where p99 is the call's own predicted p99 at the endpoint picked (the model's calibrated quantile,
 * src/model/quantiles.ts), else this router's recent p99 of the method (LatencyTracker), else there is
 * no per-try deadline (only the call's). A deadline that would not end before the call's own deadline
 * is none: the call's deadline ends that try anyway, and answers DEADLINE_EXCEEDED for the call.
 * Pure; the timer is try-timer.ts's.
 */
export interface TryDeadlineInputs {
  /** spec.timeout.predicted; undefined: the pool sets no per-try deadlines. */
  spec: PredictedTimeoutSpec | undefined;
  /** The model's p99 for this call at the endpoint picked, ms. */
  predictedP99Ms?: number;
  /** This router's recent p99 of the call's method, ms. */
  observedP99Ms?: number;
  /** What is left of the call's own deadline, ms (Infinity when it has none). */
  remainingMs: number;
}

export interface TryDeadline {
  ms: number;
  /** Whose p99 it came from. */
  basis: 'model' | 'observed';
  p99Ms: number;
}

const usable = (ms: number | undefined): ms is number => ms !== undefined && Number.isFinite(ms) && ms > 0;

/** The try's deadline, or undefined for none (see the file's comment). */
export function tryDeadline(i: TryDeadlineInputs): TryDeadline | undefined {
  const { spec } = i;
  if (!spec) return undefined;
  const basis = usable(i.predictedP99Ms) ? 'model' : usable(i.observedP99Ms) ? 'observed' : undefined;
  if (!basis) return undefined;
  const p99Ms = (basis === 'model' ? i.predictedP99Ms : i.observedP99Ms) as number;
  const ms = predictedTryTimeoutMs(spec, p99Ms);
  return ms < i.remainingMs ? { ms, basis, p99Ms } : undefined;
}

/** How a deadline was set, for the client's DEADLINE_EXCEEDED message and the log. */
export function describeTryDeadline(d: TryDeadline, spec: PredictedTimeoutSpec): string {
  const own = `${spec.multiplier} × ${d.basis === 'model' ? 'the predicted' : 'the observed'} p99 of ${round(d.p99Ms)} ms`;
  const raw = spec.multiplier * d.p99Ms;
  const bound = raw < spec.floorMs ? `, raised to the floor` : d.ms < raw ? `, cut to the ceiling` : '';
  return `${own}${bound}`;
}

const round = (ms: number) => (ms >= 10 ? Math.round(ms) : Math.round(ms * 10) / 10);
