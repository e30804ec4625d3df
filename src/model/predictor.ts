import type { PredictFn } from '../balancer/predictive.js';
import { FEATURE_COUNT, blankInput, dispatchInput, featurizeInto } from './features.js';
import { ForwardModel } from './forward.js';
import type { LatencyModel } from './model.js';

/**
 * The bridge from a loaded model to the Predictive balancer's `predict` option (src/balancer/
 * predictive.ts): the router-side signals of one endpoint and one request (RouterSignals, src/balancer/
 * signals.ts) become the model's input through the one shared mapping (features.ts dispatchInput, the
 * same the router's and the simulator's training samples go through), then a feature vector, then a
 * typed-array forward pass. Allocation-free per call (one scratch input, one vector, one output pair).
 *
 * Scale. 'absolute' (the default) returns the model's estimate itself. 'relative' lets the model
 * supply only the endpoint's factor and the router its own scale:
 *   predicted = baselineMs · est(x) / est(x_idle)
 * where x_idle is the same request on an endpoint with nothing in flight, typical recent latency, no
 * errors and no telemetry (computed once per distinct request: every candidate of a pick shares it).
 *
 * Estimate, in ms (the balancer adds its own stall floor and failure penalty):
 *   'mean'   (default) the latency's mean under a log-normal reading of the two heads:
 *            σ = (ln p90 − μ) / z0.9, mean = exp(μ + σ²/2); exp(μ) for a mean-only model
 *   'median' exp(μ)
 *   'p90'    exp(ln p90) (exp(μ) for a mean-only model)
 * A non-finite result is returned as undefined, so the balancer falls back to its heuristic.
 */
export type PredictEstimate = 'mean' | 'median' | 'p90';

export interface PredictorOptions {
  estimate?: PredictEstimate;
  /** 'absolute' (default): the model's figure; 'relative': the router's baseline × the model's endpoint factor. */
  scale?: 'relative' | 'absolute';
  /** Upper clamp on a prediction, ms (default 600,000). */
  maxMs?: number;
}

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

/**
 * A `predict` hook for the Predictive balancer from a loaded model:
 *   createBalancer('Predictive', deps, { predict: createPredictor(await loadModel('models/latency')) })
 */
export function createPredictor(
  model: LatencyModel | ForwardModel,
  options: PredictorOptions = {},
): PredictFn {
  const fwd = model instanceof ForwardModel ? model : new ForwardModel(model);
  const estimate = options.estimate ?? 'mean';
  const maxMs = options.maxMs ?? 600_000;
  const relative = (options.scale ?? 'absolute') === 'relative';
  const input = blankInput();
  const idle = blankInput();
  idle.recentLatencyMs = 1;
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  let refBaseline = NaN;
  let refKiB = NaN;
  let refMs: number | undefined;
  return (_ep, _req, f) => {
    featurizeInto(dispatchInput(f, input), raw);
    fwd.predictInto(raw, 0, out);
    const ms = latencyEstimateMs(out[0] as number, out[1] as number, estimate, maxMs);
    if (!relative || ms === undefined) return ms;
    if (f.baselineMs !== refBaseline || f.payloadKiB !== refKiB) {
      refBaseline = f.baselineMs;
      refKiB = f.payloadKiB;
      idle.payloadBytes = f.payloadKiB * 1024;
      idle.methodCostMs = f.baselineMs;
      featurizeInto(idle, raw);
      fwd.predictInto(raw, 0, out);
      refMs = latencyEstimateMs(out[0] as number, out[1] as number, estimate, maxMs);
    }
    if (refMs === undefined || !(refMs > 0)) return undefined;
    const rel = (f.baselineMs * ms) / refMs;
    return Number.isFinite(rel) ? Math.min(rel, maxMs) : undefined;
  };
}
