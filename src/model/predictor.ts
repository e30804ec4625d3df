import type { PredictFn } from '../balancer/predictive.js';
import { SibylError } from '../util/errors.js';
import { FEATURE_COUNT, RESIDUAL_INDEX, blankInput, dispatchInput, featurizeInto } from './features.js';
import { ForwardModel } from './forward.js';
import type { LatencyModel } from './model.js';

/**
 * The bridge from a loaded model to the Predictive balancer's `predict` dependency (src/balancer/
 * predictive.ts): the router-side signals of one endpoint and one request (RouterSignals, src/balancer/
 * signals.ts) become the model's input through the one shared mapping (features.ts dispatchInput, the
 * same the router's and the simulator's training samples go through), then a feature vector, then a
 * typed-array forward pass. Allocation-free per call (one scratch input, one vector, one output pair).
 *
 * Estimate, in ms (the balancer adds its own stall floor and failure penalty):
 *   'mean'   the latency's mean under a log-normal reading of the two heads:
 *            σ = (ln p90 − μ) / z0.9, mean = exp(μ + σ²/2); exp(μ) for a mean-only model
 *   'median' exp(μ)
 *   'p90'    (the hook's default) exp(ln p90) (exp(μ) for a mean-only model)
 * A non-finite result is returned as undefined, so the balancer falls back to its heuristic.
 *
 * How the model is used (features version 3: it predicts a correction to the built-in estimate
 * f.estimateMs, signals.ts builtinEstimateMs). The model learns the latency of the call being placed;
 * the built-in estimate is deliberately pessimistic about work queued ahead and about endpoints known
 * only by stale figures — that pessimism prices what a call does to the calls after it and keeps
 * routers that share the same lagged view from herding, which a model of one call's own latency cannot
 * see, and undoing it piles calls onto the fastest endpoints (bench/results/README.md, "The model", has
 * the measurements). So the hook keeps the estimate as the frame and takes only part of the model's
 * view:
 *   predicted = estimate · (model / estimate)^trust      (trust DEFAULT_TRUST = 0.25)
 * a geometric blend of the two forecasts (forecast combination, Bates & Granger 1969), and reads the
 * model's p90 rather than its mean, since the objective is the tail (p99 over all calls): an endpoint
 * whose latency the model sees as uncertain is charged for it. Both were chosen on the simulator's
 * scenarios, one setting for all (bench/results/model.md has the figures).
 *
 * Safety net. The correction is bounded by those seen in training (model.ts). Beyond that, the hook
 * returns undefined, so the balancer scores the endpoint with its built-in estimate, when the estimate
 * lies outside the range the model was trained on (its log_builtin_estimate normalisation range), or
 * when the model's figure is more than `maxCorrection` times away from it either way (default 32,
 * about three standard deviations of the shipped model's corrections beyond their mean): inputs unlike
 * anything in training (another workload, a state the simulator never produced) are where an MLP's
 * output is least reliable, and the hand-tuned formula degrades gracefully there.
 */
export type PredictEstimate = 'mean' | 'median' | 'p90';

export interface PredictorOptions {
  estimate?: PredictEstimate;
  /** Upper clamp on a prediction, ms (default 600,000). */
  maxMs?: number;
  /**
   * The largest factor by which a prediction may differ from the built-in estimate before it is
   * ignored (undefined: the balancer's own figure); default DEFAULT_MAX_CORRECTION, Infinity: no limit.
   */
  maxCorrection?: number;
  /**
   * How much of the model's correction to apply, 0..1: predicted = estimate · (model / estimate)^trust
   * (default DEFAULT_TRUST; 1: the model's figure, 0: the built-in estimate).
   */
  trust?: number;
}

/** See PredictorOptions.maxCorrection. */
export const DEFAULT_MAX_CORRECTION = 32;
/** See PredictorOptions.trust, and createPredictor for why it is not 1. */
export const DEFAULT_TRUST = 0.25;
/** The estimate the balancer's hook reads by default (see createPredictor). */
const DEFAULT_HOOK_ESTIMATE: PredictEstimate = 'p90';

/** z of the normal distribution at 0.9 (Φ⁻¹(0.9)). */
const Z90 = 1.2815515655446004;

/**
 * Turns a model's two log outputs into ms per `estimate`; undefined when not finite.
 */
export function latencyEstimateMs(
  logLatency: number,
  logP90: number,
  estimate: PredictEstimate = 'mean',
  maxMs = 600_000,
): number | undefined {
  let ms: number;
  if (estimate === 'median' || Number.isNaN(logP90)) ms = Math.exp(logLatency);
  else if (estimate === 'p90') ms = Math.exp(logP90);
  else {
    const sigma = Math.max(0, logP90 - logLatency) / Z90;
    ms = Math.exp(logLatency + (sigma * sigma) / 2);
  }
  return Number.isFinite(ms) ? Math.min(ms, maxMs) : undefined;
}

/** The bounds within which a model's figure is used (see createPredictor's Safety net). */
export interface BlendBounds {
  /** The built-in estimates the model saw in training, ms. */
  seenLo: number;
  seenHi: number;
  maxCorrection: number;
  trust: number;
}

/** The training range of a model's built-in-estimate input, ms. */
export function seenEstimateRange(fwd: ForwardModel): { seenLo: number; seenHi: number } {
  return {
    seenLo: Math.exp(fwd.model.normalisation.min[RESIDUAL_INDEX] ?? -Infinity),
    seenHi: Math.exp(fwd.model.normalisation.max[RESIDUAL_INDEX] ?? Infinity),
  };
}

/**
 * The prediction from a built-in estimate and the model's figure for it, ms:
 * estimate · (model / estimate)^trust, or undefined (use the estimate alone) when the estimate lies
 * outside the training range or the model is more than maxCorrection times away from it. Pure; the
 * router's hook and the operator's per-endpoint figures both go through it, so status shows what
 * routers act on.
 */
export function blendPrediction(estimateMs: number, modelMs: number, b: BlendBounds): number | undefined {
  if (!(estimateMs >= b.seenLo && estimateMs <= b.seenHi)) return undefined; // NaN too
  if (!(modelMs <= estimateMs * b.maxCorrection && modelMs * b.maxCorrection >= estimateMs)) return undefined;
  return b.trust === 1 ? modelMs : estimateMs * (modelMs / estimateMs) ** b.trust;
}

/**
 * A `predict` dependency for the Predictive balancer from a loaded model:
 *   createBalancer('Predictive', { ...deps, predict: createPredictor(await loadModel('models/latency')) })
 */
export function createPredictor(
  model: LatencyModel | ForwardModel,
  options: PredictorOptions = {},
): PredictFn {
  const fwd = model instanceof ForwardModel ? model : new ForwardModel(model);
  const estimate = options.estimate ?? DEFAULT_HOOK_ESTIMATE;
  const maxMs = options.maxMs ?? 600_000;
  const maxCorrection = options.maxCorrection ?? DEFAULT_MAX_CORRECTION;
  if (!(maxCorrection >= 1)) {
    throw new SibylError('ERR_CONFIG_INVALID', `maxCorrection ${maxCorrection} must be at least 1`);
  }
  // the estimates the model saw in training, ms (see Safety net)
  const { seenLo, seenHi } = seenEstimateRange(fwd);
  const trust = options.trust ?? DEFAULT_TRUST;
  if (!(trust >= 0 && trust <= 1)) {
    throw new SibylError('ERR_CONFIG_INVALID', `trust ${trust} must lie between 0 and 1`);
  }
  const bounds: BlendBounds = { seenLo, seenHi, maxCorrection, trust };
  const input = blankInput();
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  return (_ep, _req, f) => {
    const est = f.estimateMs;
    if (!(est >= seenLo && est <= seenHi)) return undefined; // NaN too; checked before the forward pass
    featurizeInto(dispatchInput(f, input), raw);
    fwd.predictInto(raw, 0, out);
    const ms = latencyEstimateMs(out[0] as number, out[1] as number, estimate, maxMs);
    if (ms === undefined) return undefined;
    return blendPrediction(est, ms, bounds);
  };
}
