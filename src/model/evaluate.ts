import { FEATURE_COUNT, featurizeInto, targetOf } from './features.js';
import { ForwardModel } from './forward.js';
import type { HoldoutMetrics, LatencyModel } from './model.js';
import type { TrainingSample } from './sample.js';

/**
 * Which samples the latency heads learn from and are judged on: a finite, non-negative latency, and a
 * successful call unless `includeFailed`. A failed call's latency is its deadline (sample.ts), and the
 * Predictive balancer already prices failures through the error rate (score = (1 − e) · L + e · penalty),
 * so teaching L the deadline too would count every failure twice. A sample must also carry the built-in
 * estimate (builtinEstimateMs, features version 3), which the model's target is relative to: samples
 * from older routers, without it, are left out (counted as dropped), not guessed at.
 */
export function usableSample(s: TrainingSample, includeFailed = false): boolean {
  const est = s.builtinEstimateMs;
  return (
    Number.isFinite(s.latencyMs) &&
    s.latencyMs >= 0 &&
    (includeFailed || !s.failed) &&
    typeof est === 'number' &&
    Number.isFinite(est) &&
    est > 0
  );
}

/**
 * The model's figures on `samples` (already filtered with usableSample), computed with the typed-array
 * forward pass: the code routers run is the code judged. Errors are in ln-latency units. A model whose
 * outputs are not finite scores Infinity, so it never wins a comparison.
 */
export function evaluate(
  model: LatencyModel | ForwardModel,
  samples: readonly TrainingSample[],
): HoldoutMetrics {
  const fwd = model instanceof ForwardModel ? model : new ForwardModel(model);
  const m = fwd.model;
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  let abs = 0;
  let sq = 0;
  let base = 0;
  let covered = 0;
  for (const s of samples) {
    featurizeInto(s, raw);
    fwd.predictInto(raw, 0, out);
    const t = targetOf(s.latencyMs);
    const e = (out[0] as number) - t;
    abs += Math.abs(e);
    sq += e * e;
    // what the model must beat: its training mean (of the residual: the built-in estimate scaled by
    // the mean correction, for a residual model)
    const r = m.target.residualOf;
    base += Math.abs(t - m.target.mean - (r === undefined ? 0 : (raw[r] as number)));
    if (t <= (out[1] as number)) covered++;
  }
  const n = samples.length;
  const finite = (x: number) => (Number.isFinite(x) ? x : Infinity);
  const metrics: HoldoutMetrics = {
    samples: n,
    maeLog: n ? finite(abs / n) : NaN,
    rmseLog: n ? finite(Math.sqrt(sq / n)) : NaN,
    baselineMaeLog: n ? base / n : NaN,
  };
  if (fwd.outputs === 2) metrics.p90Coverage = n ? covered / n : NaN;
  return metrics;
}
