import type { PredictedTimeoutSpec } from '../api/resolve.js';
import type { MethodFigures } from '../telemetry/method-latency.js';

/** Where a method's p99 came from: the latency model, or the calls observed. */
export type DeadlineSource = 'Model' | 'Observed';

/** The per-try deadline in force for one method of a pool (status.deadlines; Envoy's per_try_timeout). */
export interface MethodDeadline {
  /** "/package.Service/Method". */
  method: string;
  predictedP99Ms: number;
  perTryTimeoutMs: number;
  source: DeadlineSource;
}

/** Calls a method needs in the window before its observed p99 is trusted (a p99 of fewer is its max). */
const MIN_OBSERVED_CALLS = 20;
/** Calls a method needs before the model is asked about it: the method's cost is their median. */
const MIN_MODEL_CALLS = 5;
/** A deadline moves only when the new one is more than this far from it (as xDS weights: weights.ts). */
const DEADLINE_HYSTERESIS = 0.15;
/** The most methods listed (status and Envoy routes); the most called are kept. */
export const MAX_DEADLINES = 256;

export interface DeadlineInput {
  readonly spec: PredictedTimeoutSpec;
  /** The pool's methods over the telemetry window (telemetry/method-latency.ts). */
  readonly methods: readonly MethodFigures[];
  /**
   * The model's p99 for a typical call of the method on the pool's ready endpoints, ms (the caller
   * takes the highest over them: a try's deadline must hold wherever it lands); undefined without a
   * model in force or without a prediction.
   */
  readonly modelP99Ms: (m: MethodFigures) => number | undefined;
  /** The deadlines status lists now (hysteresis holds them). */
  readonly previous?: readonly MethodDeadline[];
}

/** x to two significant figures (toPrecision: no binary residue such as 7.6000000000000005 in status). */
const twoFigures = (x: number): number => Number(x.toPrecision(2));

/**
 * clamp(multiplier × p99, floor, ceiling) to two significant figures, whole ms (docs/reliability.md):
 * the rule of src/api/predicted-timeout.ts, rounded before the ceiling applies, so a rounded figure never
 * passes the ceiling and a ceiling is listed as written.
 */
export function perTryTimeoutMs(spec: PredictedTimeoutSpec, p99Ms: number): number {
  const raw = Math.max(spec.multiplier * p99Ms, spec.floorMs);
  const rounded = Math.max(1, Math.round(twoFigures(raw)));
  return Math.max(spec.floorMs, Math.min(rounded, spec.ceilingMs ?? Infinity));
}

/**
 * A method's p99 and its source: the model's when it gives one that is plausible, else the observed
 * one from at least MIN_OBSERVED_CALLS calls. A model p99 below the observed median (with enough calls
 * to know that median) is taken as the model being outside what it knows, and the observed figure is
 * used: a deadline that cancels most tries is worse than one that is loose.
 */
function p99Of(m: MethodFigures, input: DeadlineInput): { p99: number; source: DeadlineSource } | undefined {
  const observed = m.calls >= MIN_OBSERVED_CALLS && m.p99Ms !== undefined ? m.p99Ms : undefined;
  const model = m.calls >= MIN_MODEL_CALLS ? input.modelP99Ms(m) : undefined;
  const implausible =
    model !== undefined && m.calls >= MIN_OBSERVED_CALLS && m.p50Ms !== undefined && model < m.p50Ms;
  if (model !== undefined && Number.isFinite(model) && model > 0 && !implausible)
    return { p99: model, source: 'Model' };
  return observed !== undefined && observed > 0 ? { p99: observed, source: 'Observed' } : undefined;
}

/**
 * Each method's per-try deadline: clamp(multiplier × p99, floor, ceiling), to two significant figures,
 * held while a new figure stays within DEADLINE_HYSTERESIS of the one in force (so noise rewrites
 * neither status nor Envoy's routes). A method keeps its deadline while it has any call in the window
 * without enough for a new figure; one with no call in the window is dropped. At most MAX_DEADLINES,
 * the most called first, listed by method. Pure.
 */
export function methodDeadlines(input: DeadlineInput): MethodDeadline[] {
  const previous = new Map((input.previous ?? []).map((d) => [d.method, d]));
  const out: { d: MethodDeadline; calls: number }[] = [];
  for (const m of input.methods) {
    const before = previous.get(m.method);
    const p = p99Of(m, input);
    if (!p) {
      if (before && m.calls > 0) out.push({ d: before, calls: m.calls });
      continue;
    }
    const timeout = perTryTimeoutMs(input.spec, p.p99);
    const held =
      before &&
      before.source === p.source &&
      Math.abs(timeout - before.perTryTimeoutMs) <= DEADLINE_HYSTERESIS * before.perTryTimeoutMs &&
      before.perTryTimeoutMs === perTryTimeoutMs(input.spec, before.predictedP99Ms);
    const d: MethodDeadline = held
      ? before
      : {
          method: m.method,
          predictedP99Ms: twoFigures(p.p99),
          perTryTimeoutMs: timeout,
          source: p.source,
        };
    out.push({ d, calls: m.calls });
  }
  return out
    .sort((a, b) => b.calls - a.calls)
    .slice(0, MAX_DEADLINES)
    .map((x) => x.d)
    .sort((a, b) => (a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
}
