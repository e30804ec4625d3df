import type { PredictiveFeatures } from '../balancer/signals.js';
import type { TrainingSample } from './sample.js';

/**
 * The latency model's feature definition (docs/architecture.md, "Model"): which raw observables of a TrainingSample
 * become which inputs, in which order, through which transform. The trained weights only make sense
 * against this exact list, so it is versioned: any change to a name, the order, a transform or a cap
 * must raise FEATURES_VERSION, and a model trained against another version is refused on load
 * (artifact.ts) rather than silently fed the wrong inputs. Version 2: the figures come from one
 * function (dispatchInput) everywhere; methodCostMs is the router's baseline for the method *and
 * payload* and recentLatencyMs the endpoint's latency over it (version 1's simulator samples used an
 * idle-endpoint cost per method, which the router does not have). Version 3: the built-in scoring's own
 * latency estimate (builtinEstimateMs, from src/balancer/signals.ts) is an input, and the model learns
 * ln(latency) relative to it (residual learning; see RESIDUAL_FEATURE).
 *
 * Transforms. Latency-like and count-like signals enter as logarithms: queueing latency grows roughly
 * multiplicatively with load (L ≈ S · (1 + q) for a busy server), so in log space the target is close to
 * a sum of the inputs, which a small MLP fits easily, and heavy tails stop dominating the normalisation.
 * A log also makes a constant unit factor (ms versus a ratio) an additive offset the normalisation
 * absorbs. Utilisations and rates stay linear, clamped to a sane range.
 *
 * Missing figures. cpu, memory and queueLength are optional (no ORCA, no telemetry yet), and a router
 * has no recent latency for an endpoint it has not used; such an input is NaN in the raw vector, becomes
 * 0 after normalisation (the training mean), and a 0/1 "known" flag beside it lets the model tell an
 * average figure from an absent one.
 *
 * Normalisation: z = (clamp(x, min, max) − mean) / std per feature, fitted on the training split
 * (fitNormalisation) and stored with the weights. The clamp to the range seen in training keeps the
 * model from extrapolating: an MLP's output beyond its training data is arbitrary, and in log space an
 * arbitrary output is an absurd latency. A feature that was constant in training (std 0) is ignored
 * (z = 0): the model never learnt what it means to vary it.
 */
export const FEATURES_VERSION = 3;

/** What the model predicts from: a TrainingSample without its outcome. */
export type FeatureInput = Omit<TrainingSample, 'latencyMs' | 'failed'>;

/**
 * The one mapping from what a router knows of an endpoint at dispatch (src/balancer/signals.ts,
 * RouterSignals.dispatchFeatures) to the model's input. Everything that feeds the model goes through
 * it: the router's training samples (src/router/control-link.ts), the simulator's (src/tools/sim/samples.ts,
 * from the default model's training data) and the Predictive policy's predictions
 * (src/model/predictor.ts); so the model is asked about exactly the figures it was trained on
 * (test/unit/model/dispatch-features.test.ts). Pure; fills and returns `into` (allocation-free when
 * given), absent figures left undefined.
 *
 *   cpu, memory      ← the endpoint's CPU and memory as last reported (ORCA, else the operator), raw:
 *                      the model has telemetryAgeMs to weigh their age itself
 *   inflight         ← this router's calls in flight there, this one not counted
 *   queueLength      ← the operator's lagged figure
 *   recentLatencyMs  ← the endpoint's own latency over the router's baseline for the method and
 *                      payload (1, typical, before any call)
 *   payloadBytes     ← the request's
 *   methodCostMs     ← the router's baseline for this method and payload on a typical endpoint
 *   errorRate        ← own decayed failure rate, shrunk towards the fleet's while fresh
 *   oldestInflightMs ← age of the oldest call this router has open there (0: none)
 *   telemetryAgeMs   ← age of the operator's figures (Infinity: none yet)
 *   builtinEstimateMs← the latency Predictive's built-in scoring expects there (signals.ts
 *                      builtinEstimateMs, stall floor included): what the model corrects
 */
export function dispatchInput(f: PredictiveFeatures, into: FeatureInput = blankInput()): FeatureInput {
  into.cpu = Number.isNaN(f.reportedCpu) ? undefined : f.reportedCpu;
  into.memory = Number.isNaN(f.memory) ? undefined : f.memory;
  into.inflight = f.inflight;
  into.queueLength = Number.isNaN(f.queueLength) ? undefined : f.queueLength;
  into.recentLatencyMs = Number.isNaN(f.latencyRatio) ? 1 : f.latencyRatio;
  into.payloadBytes = f.payloadKiB * 1024;
  into.methodCostMs = f.baselineMs;
  into.errorRate = f.errorRate;
  into.oldestInflightMs = f.oldestInflightAgeMs;
  into.telemetryAgeMs = f.hintAgeMs;
  into.builtinEstimateMs = f.estimateMs;
  return into;
}

/** A FeatureInput to fill. */
export function blankInput(): FeatureInput {
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

export interface FeatureSpec {
  readonly name: string;
  /** The transform, as a formula over the sample's fields; informational (features.json). */
  readonly transform: string;
  readonly description: string;
}

/** Ages and waits are capped before the log: beyond an hour, older says nothing more. */
export const AGE_CAP_MS = 3_600_000;
/** Floor under latencies and costs before a log, ms (a microsecond). */
const LOG_FLOOR_MS = 1e-3;

const FEATURES: readonly FeatureSpec[] = [
  { name: 'cpu', transform: 'clamp(cpu, 0, 4)', description: 'endpoint CPU utilisation (ORCA or metrics)' },
  { name: 'memory', transform: 'clamp(memory, 0, 4)', description: 'endpoint memory utilisation' },
  { name: 'log_inflight', transform: 'ln(1 + inflight)', description: "this router's calls in flight there" },
  {
    name: 'log_queue',
    transform: 'ln(1 + queueLength)',
    description: 'lagged queue length reported by the endpoint',
  },
  {
    name: 'log_recent_latency',
    transform: `ln(max(recentLatencyMs, ${LOG_FLOOR_MS}))`,
    description:
      "this router's recent latency there over its baseline for the method and payload (1: typical)",
  },
  { name: 'log_payload_kib', transform: 'ln(1 + payloadBytes / 1024)', description: 'request payload size' },
  {
    name: 'log_method_cost',
    transform: `ln(max(methodCostMs, ${LOG_FLOOR_MS}))`,
    description: "this router's baseline latency for the method and payload on a typical endpoint",
  },
  { name: 'error_rate', transform: 'clamp(errorRate, 0, 1)', description: 'recent error rate there' },
  {
    name: 'log_oldest_inflight',
    transform: `ln(1 + min(oldestInflightMs, ${AGE_CAP_MS}))`,
    description: 'age of the oldest call still open there (a pause shows at once)',
  },
  {
    name: 'log_telemetry_age',
    transform: `ln(1 + min(telemetryAgeMs, ${AGE_CAP_MS}))`,
    description: 'age of cpu, memory and queueLength (Infinity or NaN: the cap)',
  },
  { name: 'cpu_known', transform: 'cpu present ? 1 : 0', description: 'whether cpu was reported' },
  { name: 'memory_known', transform: 'memory present ? 1 : 0', description: 'whether memory was reported' },
  {
    name: 'queue_known',
    transform: 'queueLength present ? 1 : 0',
    description: 'whether queueLength was reported',
  },
  {
    name: 'recent_latency_known',
    transform: 'recentLatencyMs > 0 ? 1 : 0',
    description: 'whether the router had a recent latency there',
  },
  {
    name: 'log_builtin_estimate',
    transform: `ln(max(builtinEstimateMs ?? methodCostMs · recentLatencyMs, ${LOG_FLOOR_MS}))`,
    description:
      "the Predictive policy's built-in latency estimate there (the model's target is relative to it)",
  },
];

export const FEATURE_NAMES: readonly string[] = FEATURES.map((f) => f.name);
export const FEATURE_COUNT = FEATURES.length;

/**
 * Residual learning. The network does not predict ln(latency) outright: it predicts the correction
 * r = ln(latency) − ln(built-in estimate), the raw value of this feature, which the forward pass adds
 * back (model.ts). Why:
 *   - the built-in estimate is a strong, hand-tuned predictor (issue 7: it closes most of the gap to an
 *     oracle); a model that had to rebuild it from the raw figures did worse than it (features
 *     version 2: Predictive+model behind Predictive on 7 of 8 scenarios). Given it as a starting point,
 *     a network with zero output IS the built-in scoring, and training only has to find where it errs
 *     (He et al. 2016's residual connections; boosting from a base predictor, Friedman 2001);
 *   - in log space the correction is a factor, so one network serves 1 ms and 1 s calls alike, and the
 *     range clamp (the residuals seen in training) bounds how far the model may move away from the
 *     estimate: by at most the largest correction it saw.
 * It is also an input: how wrong the estimate is may depend on its size.
 */
export const RESIDUAL_FEATURE = 'log_builtin_estimate';
export const RESIDUAL_INDEX = FEATURES.findIndex((f) => f.name === RESIDUAL_FEATURE);

/** The model's target: the natural log of the latency in ms, relative to the residual feature. */
export const TARGET_TRANSFORM = `ln(max(latencyMs, ${LOG_FLOOR_MS})) − ${RESIDUAL_FEATURE}`;

export function targetOf(latencyMs: number): number {
  return Math.log(Math.max(latencyMs, LOG_FLOOR_MS));
}

function present(x: number | undefined): x is number {
  return x !== undefined && x !== null && Number.isFinite(x);
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

function log1pNonNeg(x: number): number {
  return Math.log1p(x > 0 ? x : 0);
}

function ageLog(ms: number): number {
  // Infinity (never) and NaN (unknown) both mean "as old as it gets"
  return Math.log1p(Number.isNaN(ms) ? AGE_CAP_MS : clamp(ms, 0, AGE_CAP_MS));
}

/**
 * Writes the raw (un-normalised) feature vector of `s` into `out` at `offset`, in FEATURES order;
 * missing figures are NaN. Allocation-free: routers call it per endpoint per pick.
 */
export function featurizeInto(s: FeatureInput, out: Float64Array | Float32Array, offset = 0): void {
  const cpuKnown = present(s.cpu);
  const memKnown = present(s.memory);
  const queueKnown = present(s.queueLength);
  const recentKnown = Number.isFinite(s.recentLatencyMs) && s.recentLatencyMs > 0;
  out[offset] = cpuKnown ? clamp(s.cpu as number, 0, 4) : NaN;
  out[offset + 1] = memKnown ? clamp(s.memory as number, 0, 4) : NaN;
  out[offset + 2] = Number.isFinite(s.inflight) ? log1pNonNeg(s.inflight) : NaN;
  out[offset + 3] = queueKnown ? log1pNonNeg(s.queueLength as number) : NaN;
  out[offset + 4] = recentKnown ? Math.log(Math.max(s.recentLatencyMs, LOG_FLOOR_MS)) : NaN;
  out[offset + 5] = Number.isFinite(s.payloadBytes) ? log1pNonNeg(s.payloadBytes / 1024) : NaN;
  out[offset + 6] =
    Number.isFinite(s.methodCostMs) && s.methodCostMs > 0
      ? Math.log(Math.max(s.methodCostMs, LOG_FLOOR_MS))
      : NaN;
  out[offset + 7] = Number.isFinite(s.errorRate) ? clamp(s.errorRate, 0, 1) : NaN;
  out[offset + 8] = Number.isFinite(s.oldestInflightMs) ? ageLog(s.oldestInflightMs) : 0;
  out[offset + 9] = ageLog(s.telemetryAgeMs);
  out[offset + 10] = cpuKnown ? 1 : 0;
  out[offset + 11] = memKnown ? 1 : 0;
  out[offset + 12] = queueKnown ? 1 : 0;
  out[offset + 13] = recentKnown ? 1 : 0;
  out[offset + 14] = logEstimate(s);
}

/**
 * ln of the built-in estimate; without one (an input built by hand, such as the operator's fleet-level
 * figure in src/operator/model-manager.ts), ln(methodCostMs · recentLatencyMs): the estimate of an
 * endpoint known only by its recent latency ratio, with nothing ahead of the call. NaN when neither is
 * known. Training never sees the fallback: samples without the estimate are refused (sampleProblem).
 */
function logEstimate(s: FeatureInput): number {
  const est = s.builtinEstimateMs;
  if (est !== undefined && est !== null && Number.isFinite(est) && est > 0) {
    return Math.log(Math.max(est, LOG_FLOOR_MS));
  }
  const ratio = Number.isFinite(s.recentLatencyMs) && s.recentLatencyMs > 0 ? s.recentLatencyMs : 1;
  const fallback = s.methodCostMs * ratio;
  return Number.isFinite(fallback) && fallback > 0 ? Math.log(Math.max(fallback, LOG_FLOOR_MS)) : NaN;
}

/** The raw feature vector of one sample (allocates; see featurizeInto for the hot path). */
export function featurize(s: FeatureInput): Float64Array {
  const v = new Float64Array(FEATURE_COUNT);
  featurizeInto(s, v);
  return v;
}

/** Raw feature vectors of many samples, row-major (n × FEATURE_COUNT). */
export function featurizeAll(samples: readonly FeatureInput[]): Float64Array {
  const out = new Float64Array(samples.length * FEATURE_COUNT);
  samples.forEach((s, i) => featurizeInto(s, out, i * FEATURE_COUNT));
  return out;
}

/**
 * Per-feature mean, standard deviation and range of the training split's known values; std 0 marks a
 * constant feature.
 */
export interface Normalisation {
  mean: number[];
  std: number[];
  min: number[];
  max: number[];
}

/**
 * Fits the normalisation on raw vectors (row-major, `d` columns), ignoring missing (NaN) entries. A
 * column with no known value, or one value only, gets mean 0 (or that value) and std 0 (ignored).
 */
export function fitNormalisation(raw: Float64Array, d = FEATURE_COUNT): Normalisation {
  const n = Math.floor(raw.length / d);
  const mean: number[] = [];
  const std: number[] = [];
  const min: number[] = [];
  const max: number[] = [];
  for (let j = 0; j < d; j++) {
    let count = 0;
    let sum = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = raw[i * d + j] as number;
      if (!Number.isNaN(x)) {
        count++;
        sum += x;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
    }
    min.push(count > 0 ? lo : 0);
    max.push(count > 0 ? hi : 0);
    const m = count > 0 ? sum / count : 0;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const x = raw[i * d + j] as number;
      if (!Number.isNaN(x)) ss += (x - m) * (x - m);
    }
    const sd = count > 1 ? Math.sqrt(ss / (count - 1)) : 0;
    mean.push(m);
    // a spread this small relative to the mean is rounding noise, not a signal
    std.push(sd > 1e-9 * Math.max(1, Math.abs(m)) ? sd : 0);
  }
  return { mean, std, min, max };
}

/**
 * Normalises `raw` (row-major, d = norm.mean.length columns) into `out` (may be the same array):
 * z = (clamp(x, min, max) − mean) / std; NaN (missing) and constant features (std 0) become 0.
 */
export function normaliseInto(
  raw: ArrayLike<number>,
  norm: Normalisation,
  out: Float64Array | Float32Array,
): void {
  const d = norm.mean.length;
  for (let k = 0; k < raw.length; k++) {
    const j = k % d;
    const x = raw[k] as number;
    const sd = norm.std[j] as number;
    if (Number.isNaN(x) || sd === 0) {
      out[k] = 0;
      continue;
    }
    const lo = norm.min[j] as number;
    const hi = norm.max[j] as number;
    out[k] = ((x < lo ? lo : x > hi ? hi : x) - (norm.mean[j] as number)) / sd;
  }
}

/** features.json: the definition a model was trained against. */
export interface FeaturesFile {
  version: number;
  features: FeatureSpec[];
  target: string;
}

export function featuresFile(): FeaturesFile {
  return { version: FEATURES_VERSION, features: FEATURES.map((f) => ({ ...f })), target: TARGET_TRANSFORM };
}

/**
 * Why `s` cannot be a training sample, or undefined when it can. Used on samples read from files and
 * LoadReports: the contract's required numbers must be finite (telemetryAgeMs may be Infinity).
 */
export function sampleProblem(s: unknown): string | undefined {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return 'not an object';
  const o = s as Record<string, unknown>;
  for (const k of [
    'inflight',
    'recentLatencyMs',
    'payloadBytes',
    'methodCostMs',
    'errorRate',
    'oldestInflightMs',
    'latencyMs',
  ]) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return `${k} must be a finite number`;
  }
  if (typeof o.telemetryAgeMs !== 'number' || Number.isNaN(o.telemetryAgeMs)) {
    return 'telemetryAgeMs must be a number';
  }
  const est = o.builtinEstimateMs;
  if (est === undefined || est === null) {
    return 'builtinEstimateMs is missing (a sample from before features version 3; not usable)';
  }
  if (typeof est !== 'number' || !Number.isFinite(est) || est <= 0) {
    return 'builtinEstimateMs must be a finite positive number';
  }
  for (const k of ['cpu', 'memory', 'queueLength']) {
    if (o[k] !== undefined && o[k] !== null && (typeof o[k] !== 'number' || !Number.isFinite(o[k]))) {
      return `${k} must be a finite number when present`;
    }
  }
  if (typeof o.failed !== 'boolean') return 'failed must be a boolean';
  if ((o.latencyMs as number) < 0) return 'latencyMs must not be negative';
  return undefined;
}
