import type { PredictiveFeatures } from '../balancer/signals.js';
import { SibylError } from '../util/errors.js';
import { FEATURE_COUNT, blankInput, dispatchInput, featurizeInto } from './features.js';
import { ForwardModel } from './forward.js';
import type { LatencyModel, QuantileCalibration } from './model.js';

export type { QuantileCalibration } from './model.js';

/**
 * Per-call latency quantiles from the model's two heads (docs/architecture.md, "Model"), for per-try
 * deadlines and hedge delays: the p99 of *this* call at *this* endpoint, from its method, payload and
 * the endpoint's state, rather than one figure per pool.
 *
 * Reading. The heads give μ (the mean of ln latency) and ln p90; under a log-normal reading the spread
 * is σ = (ln p90 − μ) / z0.9 (floored at SIGMA_FLOOR, since the heads may touch). The q-quantile is
 *
 *   ln Q(q) = μ + s(q) · σ
 *
 * where s(q) is z_q (Φ⁻¹(q)) for an uncalibrated model, or, once calibrated, the empirical q-quantile
 * of the scaled residuals (t − μ) / σ on calibration samples the model never trained on: split
 * conformal prediction with a locally weighted score (Lei, G'Sell, Rinaldo, Tibshirani & Wasserman,
 * "Distribution-Free Predictive Inference for Regression", JASA 2018, §5.2). The score table carries
 * the tails the log-normal reading gets wrong (latency is heavier-tailed than log-normal under queueing)
 * while σ keeps the prediction per call: a call the model sees as uncertain gets a wider interval. With
 * n calibration samples, level q's score is the ⌈(n + 1) q⌉-th smallest, which guarantees coverage ≥ q
 * on exchangeable data (ibid., Theorem 2.2); the figure reported is measured on other samples.
 *
 * Pure; no tfjs. `createQuantileFn` is allocation-free per call like createPredictor.
 */

/** The levels a calibration keeps a score for; others are interpolated (linearly in z). */
export const CALIBRATION_LEVELS: readonly number[] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999];

/** The least σ used, in ln units (a spread of ±1%): two touching heads still give an interval. */
const SIGMA_FLOOR = 0.01;

/** z of the normal distribution at 0.9 (Φ⁻¹(0.9)). */
export const Z90 = 1.2815515655446004;

/** A call's q-quantile latency at an endpoint from its dispatch features, ms; undefined when unknown. */
export type QuantileFn = (f: PredictiveFeatures, q: number) => number | undefined;

/**
 * Φ⁻¹(p), the standard normal quantile: Acklam's rational approximation (relative error < 1.2e-9),
 * https://web.archive.org/web/20151030215612/http://home.online.no/~pjacklam/notes/invnorm/
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** σ of ln latency from the two heads (SIGMA_FLOOR at least; the floor for a mean-only model). */
export function sigmaOf(logLatency: number, logP90: number): number {
  const s = (logP90 - logLatency) / Z90;
  return Number.isFinite(s) && s > SIGMA_FLOOR ? s : SIGMA_FLOOR;
}

/**
 * s(q): the calibrated score at level q, interpolated linearly in z between the table's levels and held
 * at its ends' offset beyond them (s(q) = s(end) + z_q − z_end); z_q without a calibration.
 */
export function scoreAt(cal: QuantileCalibration | undefined, q: number): number {
  const z = normalQuantile(q);
  if (!cal || cal.levels.length === 0) return z;
  const { levels, scores } = cal;
  const last = levels.length - 1;
  if (q <= levels[0]!) return scores[0]! + z - normalQuantile(levels[0]!);
  if (q >= levels[last]!) return scores[last]! + z - normalQuantile(levels[last]!);
  let k = 1;
  while (levels[k]! < q) k++;
  const z0 = normalQuantile(levels[k - 1]!);
  const z1 = normalQuantile(levels[k]!);
  const w = (z - z0) / (z1 - z0);
  return scores[k - 1]! + w * (scores[k]! - scores[k - 1]!);
}

/** ln of the q-quantile, from the heads' outputs (see the file's comment). */
export function logQuantile(
  logLatency: number,
  logP90: number,
  q: number,
  cal: QuantileCalibration | undefined,
): number {
  return logLatency + scoreAt(cal, q) * sigmaOf(logLatency, logP90);
}

/** One calibration or test sample: the observed ln latency and the heads' outputs for it. */
export interface ScoredSample {
  t: number;
  logLatency: number;
  logP90: number;
}

/**
 * Split-conformal scores at `levels` from samples the model did not train on: level q's score is the
 * ⌈(n + 1) q⌉-th smallest scaled residual (the largest when that exceeds n). Throws ERR_MODEL with no
 * samples.
 */
export function fitCalibration(
  samples: readonly ScoredSample[],
  source: QuantileCalibration['source'],
  levels: readonly number[] = CALIBRATION_LEVELS,
): QuantileCalibration {
  const n = samples.length;
  if (n === 0) throw new SibylError('ERR_MODEL', 'no samples to calibrate the quantiles on');
  const r = Float64Array.from(samples, (s) => (s.t - s.logLatency) / sigmaOf(s.logLatency, s.logP90));
  r.sort();
  const scores = levels.map((q) => r[Math.min(n, Math.ceil((n + 1) * q)) - 1]!);
  return { levels: [...levels], scores, samples: n, source };
}

/** Share of samples whose latency is at or below their predicted q-quantile. NaN with none. */
export function coverage(
  samples: readonly ScoredSample[],
  q: number,
  cal: QuantileCalibration | undefined,
): number {
  if (samples.length === 0) return NaN;
  let under = 0;
  for (const s of samples) if (s.t <= logQuantile(s.logLatency, s.logP90, q, cal)) under++;
  return under / samples.length;
}

/**
 * A per-call quantile function from a loaded model: the call's dispatch features (src/balancer/
 * signals.ts) through the one shared mapping (features.ts dispatchInput), the forward pass, then
 * logQuantile with the model's calibration. The model's figure, not the pick's blend (predictor.ts):
 * the blend tempers the model for ranking endpoints; a deadline needs the call's own latency
 * distribution, which is what the heads and the calibration describe. Capped at `maxMs`.
 */
/**
 * The q-quantile latency, ms, of the featurized input `raw` (one row): the model's two heads read
 * through its calibration (logQuantile). `out` is scratch of length 2; NaN or Infinity when the heads
 * give no finite figure. The one reading of a forward pass as a quantile, for routers' per-call
 * functions (createQuantileFn) and the operator's per-method deadlines (ModelManager).
 */
export function predictQuantileMs(
  fwd: ForwardModel,
  raw: Float64Array,
  out: Float64Array,
  q: number,
): number {
  fwd.predictInto(raw, 0, out);
  const head90 = fwd.outputs === 2 ? (out[1] as number) : NaN;
  return Math.exp(logQuantile(out[0] as number, head90, q, fwd.model.calibration));
}

export function createQuantileFn(model: LatencyModel | ForwardModel, maxMs = 600_000): QuantileFn {
  const fwd = model instanceof ForwardModel ? model : new ForwardModel(model);
  const input = blankInput();
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  return (f, q) => {
    if (!(q > 0 && q < 1) || !(f.estimateMs > 0)) return undefined;
    featurizeInto(dispatchInput(f, input), raw);
    const ms = predictQuantileMs(fwd, raw, out, q);
    return Number.isFinite(ms) ? Math.min(ms, maxMs) : undefined;
  };
}
