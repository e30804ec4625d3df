import type { PredictFn, PredictiveFeatures } from '../balancer/predictive.js';
import { FEATURE_COUNT, featurizeInto, type FeatureInput } from './features.js';
import { ForwardModel } from './forward.js';
import type { LatencyModel } from './model.js';

/**
 * The bridge from a loaded model to the Predictive balancer's `predict` option (src/balancer/
 * predictive.ts): the router-side signals of one endpoint and one request, as that balancer gathers
 * them, become a TrainingSample-shaped input, then a feature vector, then a typed-array forward pass.
 * Allocation-free per call (one scratch input, one vector, one output pair reused).
 *
 * How the router's figures map onto the sample contract (src/model/sample.ts):
 *   cpu, memory, queueLength  ← features.cpu, .memory, .queueLength (NaN: unknown)
 *   inflight                  ← features.inflight (this router's own calls in flight)
 *   recentLatencyMs           ← features.latencyRatio: own recent latency over the method-and-payload
 *                               baseline (the contract's "normalised by method cost"; NaN before any call)
 *   payloadBytes              ← features.payloadKiB × 1024
 *   methodCostMs              ← features.baselineMs (the request's typical latency on the pool)
 *   errorRate                 ← features.errorRate
 *   oldestInflightMs          ← features.oldestInflightAgeMs
 *   telemetryAgeMs            ← features.hintAgeMs (Infinity without operator figures)
 *
 * What the hook returns, in ms (the balancer adds its own stall floor and failure penalty):
 *   'mean'   (default) the latency's mean under a log-normal reading of the two heads:
 *            σ = (ln p90 − μ) / z0.9, mean = exp(μ + σ²/2); exp(μ) for a mean-only model
 *   'median' exp(μ)
 *   'p90'    exp(ln p90) (exp(μ) for a mean-only model)
 * A non-finite result is returned as undefined, so the balancer falls back to its heuristic.
 */
export type PredictEstimate = 'mean' | 'median' | 'p90';

export interface PredictorOptions {
  estimate?: PredictEstimate;
  /** Upper clamp on a prediction, ms (default 600,000). */
  maxMs?: number;
}

/** z of the normal distribution at 0.9 (Φ⁻¹(0.9)). */
const Z90 = 1.2815515655446004;

/** Fills `into` (a reusable TrainingSample-shaped input) from the balancer's features. */
export function featureInputFrom(f: PredictiveFeatures, into: FeatureInput = blankInput()): FeatureInput {
  into.cpu = f.cpu;
  into.memory = f.memory;
  into.inflight = f.inflight;
  into.queueLength = f.queueLength;
  into.recentLatencyMs = f.latencyRatio;
  into.payloadBytes = f.payloadKiB * 1024;
  into.methodCostMs = f.baselineMs;
  into.errorRate = f.errorRate;
  into.oldestInflightMs = f.oldestInflightAgeMs;
  into.telemetryAgeMs = f.hintAgeMs;
  return into;
}

function blankInput(): FeatureInput {
  return {
    inflight: 0,
    recentLatencyMs: NaN,
    payloadBytes: 0,
    methodCostMs: NaN,
    errorRate: 0,
    oldestInflightMs: 0,
    telemetryAgeMs: Infinity,
  };
}

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
  const input = blankInput();
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  return (_ep, _req, f) => {
    featurizeInto(featureInputFrom(f, input), raw);
    fwd.predictInto(raw, 0, out);
    return latencyEstimateMs(out[0] as number, out[1] as number, estimate, maxMs);
  };
}
