import type { PredictFn, PredictiveFeatures } from '../balancer/predictive.js';
import type { Endpoint } from '../balancer/types.js';
import { FEATURE_COUNT, featurizeInto, type FeatureInput } from './features.js';
import { ForwardModel } from './forward.js';
import type { LatencyModel } from './model.js';

/**
 * The bridge from a loaded model to the Predictive balancer's `predict` option (src/balancer/
 * predictive.ts): the router-side signals of one endpoint and one request, as that balancer gathers
 * them, become a TrainingSample-shaped input, then a feature vector, then a typed-array forward pass.
 * Allocation-free per call (one scratch input, one vector, one output pair reused).
 *
 * How the router's figures map onto the sample contract (src/model/sample.ts), following what the
 * simulator records for the shipped model (src/sim/samples.ts):
 *   cpu, memory               ← the endpoint's own load report (ep.load), else the operator's figures
 *                               (ep.hints), raw; the balancer's features.cpu is faded by age, and the
 *                               model has telemetryAgeMs to weigh staleness itself
 *   queueLength               ← features.queueLength (the operator's lagged figure; NaN: unknown)
 *   inflight                  ← features.inflight (this router's own calls in flight, this one excluded)
 *   recentLatencyMs           ← features.latencyRatio: own recent latency over the method-and-payload
 *                               baseline, 1 (typical) before any call, as the simulator records it
 *   payloadBytes              ← features.payloadKiB × 1024
 *   methodCostMs              ← features.baselineMs (see 'relative' below: not quite the same figure)
 *   errorRate                 ← features.errorRate
 *   oldestInflightMs          ← features.oldestInflightAgeMs
 *   telemetryAgeMs            ← features.hintAgeMs (Infinity without operator figures)
 *
 * Scale. The simulator records methodCostMs as the method's latency on an idle endpoint, whatever the
 * payload; the router's baselineMs is its typical latency on the pool for this method *and payload*.
 * Fed as methodCostMs it counts the payload twice and can take the model outside the range it was
 * trained on. So by default ('relative') the model supplies only the endpoint's factor and the router
 * its own scale:
 *   predicted = baselineMs · est(x) / est(x_idle)
 * where x_idle is the same request on an endpoint with nothing in flight, typical recent latency, no
 * errors and no telemetry (computed once per distinct request: every candidate of a pick shares it).
 * 'absolute' returns est(x) itself.
 *
 * Measured in the simulator (bench/scenarios, policy Predictive, p99 over all calls, mean of seeds 11
 * and 12), the hook with the shipped model (models/latency) against the balancer's built-in heuristic:
 * gc-pauses 10.5 vs 10.0 ms, heterogeneous 36.8 vs 30.7, mixed 57.5 vs 41.9, payload-heavy 86.6 vs
 * 84.9, sinkhole 10.6 vs 9.8, slow-backend 21.0 vs 19.3 (the unlimited overload ramps collapse alike).
 * Another model of the same recipe and holdout error came within 2–10% everywhere, and absolute mode
 * was 55% worse on payload-heavy. The hook works, but the heuristic is still the better default; the
 * holdout error alone does not say how well a model routes.
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
  /** 'relative' (default): the router's baseline × the model's endpoint factor; 'absolute': the model's figure. */
  scale?: 'relative' | 'absolute';
  /** Upper clamp on a prediction, ms (default 600,000). */
  maxMs?: number;
}

/** z of the normal distribution at 0.9 (Φ⁻¹(0.9)). */
const Z90 = 1.2815515655446004;

/**
 * Fills `into` (a reusable TrainingSample-shaped input) from the balancer's features and, when given,
 * the endpoint's raw load figures.
 */
export function featureInputFrom(
  f: PredictiveFeatures,
  into: FeatureInput = blankInput(),
  ep?: Endpoint,
): FeatureInput {
  into.cpu = ep ? (ep.load?.cpu ?? ep.hints?.cpu ?? NaN) : f.cpu;
  into.memory = ep ? (ep.load?.memory ?? ep.hints?.memory ?? NaN) : f.memory;
  into.inflight = f.inflight;
  into.queueLength = f.queueLength;
  into.recentLatencyMs = Number.isNaN(f.latencyRatio) ? 1 : f.latencyRatio;
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
  const relative = (options.scale ?? 'relative') === 'relative';
  const input = blankInput();
  const idle = blankInput();
  idle.recentLatencyMs = 1;
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  let refBaseline = NaN;
  let refKiB = NaN;
  let refMs: number | undefined;
  return (ep, _req, f) => {
    featurizeInto(featureInputFrom(f, input, ep), raw);
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
