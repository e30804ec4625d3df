import { seededRandom } from '../util/clock.js';
import { SibylError } from '../util/errors.js';
import { calibrate } from './calibrate.js';
import { evaluate, usableSample } from './evaluate.js';
import {
  FEATURE_COUNT,
  FEATURE_NAMES,
  FEATURES_VERSION,
  RESIDUAL_INDEX,
  featurizeAll,
  fitNormalisation,
  normaliseInto,
  targetOf,
} from './features.js';
import { initLayers, type HoldoutMetrics, type LatencyModel } from './model.js';
import type { TrainingSample } from './sample.js';
import { initTf, tf, type BackendChoice } from './tf.js';

/**
 * Training the latency model (docs/architecture.md, "Model") with tfjs: a small MLP (15 → 32 → 16 → 2 by default, ReLU)
 * on normalised features (features.ts), target ln(latency) relative to the built-in scoring's estimate
 * (ln latency − log_builtin_estimate: residual learning, features.ts RESIDUAL_FEATURE; the forward pass
 * adds the estimate back). Two heads, trained together with Adam
 * (Kingma & Ba 2015):
 *   - the mean of ln latency, squared error;
 *   - the p90, as mean + softplus(gap), with the pinball (quantile) loss
 *     ρτ(u) = max(τ·u, (τ − 1)·u), u = t − q (Koenker & Bassett 1978), whose minimiser is the τ-quantile.
 * Both losses are taken in the normalised target space, t = (ln latency − base − mean) / std.
 *
 * Deterministic for a given seed and backend: initial weights come from a seeded generator (model.ts),
 * each epoch's minibatch order from the same generator, and nothing else is random (no dropout). The
 * holdout is drawn by seed too and never seen by training; its figures are what refit compares.
 * Training yields to the event loop every 20 ms or so, so a process that trains (the operator) keeps
 * serving meanwhile; it is still CPU it does not spend elsewhere.
 */
export interface TrainOptions {
  /** Seeds the holdout draw, the initial weights and the minibatch order (default 1). */
  seed?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Hidden layer widths (default [32, 16]). */
  hidden?: number[];
  /** The second head's quantile (default 0.9); null trains the mean head only. */
  quantile?: number | null;
  /** Share of usable samples held out for evaluation (default 0.2). */
  holdoutFraction?: number;
  /** Fewer usable samples than this is an ERR_MODEL (default 50). */
  minSamples?: number;
  /** Learn from failed calls too (default false; see evaluate.ts, usableSample). */
  includeFailed?: boolean;
  backend?: BackendChoice;
  /** Recorded in the model's training info. */
  source?: string;
}

export const TRAIN_DEFAULTS = {
  seed: 1,
  epochs: 40,
  batchSize: 64,
  learningRate: 0.003,
  hidden: [32, 16],
  quantile: 0.9,
  holdoutFraction: 0.2,
  minSamples: 50,
} as const;

/** Longest stretch of training steps between two yields to the event loop, ms. */
const YIELD_EVERY_MS = 20;

export interface TrainResult {
  model: LatencyModel;
  metrics: HoldoutMetrics;
  train: TrainingSample[];
  holdout: TrainingSample[];
  durationMs: number;
}

import { splitHoldout } from './split.js';

export { splitHoldout };

/** Usable samples of `samples` (see usableSample), or ERR_MODEL when fewer than `min`. */
export function usableSamples(
  samples: readonly TrainingSample[],
  min: number,
  includeFailed = false,
): TrainingSample[] {
  const usable = samples.filter((s) => usableSample(s, includeFailed));
  if (usable.length < min) {
    throw new SibylError(
      'ERR_MODEL',
      `too few samples to train the latency model: ${usable.length} usable of ${samples.length} ` +
        `(failed calls and invalid latencies are left out); need at least ${min}`,
    );
  }
  return usable;
}

/**
 * Fits a model on all of `train` (usable samples; no split, no evaluation). `holdoutSamples` and
 * `droppedSamples` only fill in the model's training info.
 */
export async function fitModel(
  train: readonly TrainingSample[],
  options: TrainOptions = {},
  info: { holdoutSamples?: number; droppedSamples?: number } = {},
): Promise<LatencyModel> {
  const o = { ...TRAIN_DEFAULTS, ...definedOnly(options) };
  const n = train.length;
  if (n < 2) throw new SibylError('ERR_MODEL', `cannot fit the latency model on ${n} samples`);
  const backend = await initTf(options.backend ?? 'auto');
  const d = FEATURE_COUNT;

  const raw = featurizeAll(train);
  const normalisation = fitNormalisation(raw, d);
  const x = new Float32Array(n * d);
  normaliseInto(raw, normalisation, x);
  // the residual: usable samples all carry the estimate (usableSample), so the base is finite
  const t = Float64Array.from(
    train,
    (s, i) => targetOf(s.latencyMs) - (raw[i * d + RESIDUAL_INDEX] as number),
  );
  if (!t.every(Number.isFinite)) {
    throw new SibylError('ERR_MODEL', 'a training sample has no built-in estimate (builtinEstimateMs)');
  }
  const tMean = t.reduce((a, b) => a + b, 0) / n;
  const tSd = Math.sqrt(t.reduce((a, b) => a + (b - tMean) * (b - tMean), 0) / Math.max(1, n - 1));
  const tStd = tSd > 1e-6 ? tSd : 1;
  let tMin = Infinity;
  let tMax = -Infinity;
  for (const v of t) {
    if (v < tMin) tMin = v;
    if (v > tMax) tMax = v;
  }
  const y = Float32Array.from(t, (v) => (v - tMean) / tStd);

  const quantile = o.quantile;
  if (quantile !== null && !(quantile > 0 && quantile < 1)) {
    throw new SibylError('ERR_MODEL', `quantile ${quantile} must lie strictly between 0 and 1`);
  }
  const layers = initLayers({
    inputs: d,
    hidden: [...o.hidden],
    outputs: quantile === null ? 1 : 2,
    seed: o.seed,
  });
  const ws = layers.map((l, k) => tf.variable(tf.tensor2d(l.weights, [l.inputs, l.outputs]), true, `w${k}`));
  const bs = layers.map((l, k) => tf.variable(tf.tensor1d(l.bias), true, `b${k}`));
  const vars = [...ws, ...bs];
  const optimizer = tf.train.adam(o.learningRate);
  const rnd = seededRandom(o.seed);
  const order = new Int32Array(n);
  const xs = new Float32Array(n * d); // this epoch's order; a batch is a contiguous slice (cheaper than tf.gather)
  const ys = new Float32Array(n);
  const batch = Math.max(1, Math.min(o.batchSize, n));
  let lastYield = performance.now();
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      for (let i = 0; i < n; i++) order[i] = i;
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        const tmp = order[i] as number;
        order[i] = order[j] as number;
        order[j] = tmp;
      }
      for (let i = 0; i < n; i++) {
        const src = order[i] as number;
        xs.set(x.subarray(src * d, src * d + d), i * d);
        ys[i] = y[src] as number;
      }
      for (let start = 0; start < n; start += batch) {
        const m = Math.min(batch, n - start);
        tf.tidy(() => {
          const xb = tf.tensor2d(xs.subarray(start * d, (start + m) * d), [m, d]);
          const yb = tf.tensor2d(ys.subarray(start, start + m), [m, 1]);
          optimizer.minimize(() => lossOf(forwardTf(xb, ws, bs), yb, quantile), false, vars);
        });
        if (performance.now() - lastYield > YIELD_EVERY_MS) {
          // tfjs steps run synchronously: let the operator's timers and sockets (lease renewals,
          // control streams) through now and then. Changes nothing in the result.
          await new Promise<void>((resolve) => setImmediate(resolve));
          lastYield = performance.now();
        }
      }
    }
    layers.forEach((l, k) => {
      l.weights = Float32Array.from(ws[k]!.dataSync());
      l.bias = Float32Array.from(bs[k]!.dataSync());
    });
  } finally {
    tf.dispose(vars);
    optimizer.dispose();
  }
  for (const l of layers) {
    if (!l.weights.every(Number.isFinite) || !l.bias.every(Number.isFinite)) {
      throw new SibylError('ERR_MODEL', 'training diverged (non-finite weights); lower the learning rate');
    }
  }
  return {
    featuresVersion: FEATURES_VERSION,
    featureNames: [...FEATURE_NAMES],
    normalisation,
    target: { mean: tMean, std: tStd, min: tMin, max: tMax, quantile, residualOf: RESIDUAL_INDEX },
    layers,
    training: {
      seed: o.seed,
      epochs: o.epochs,
      batchSize: batch,
      learningRate: o.learningRate,
      samples: n,
      holdoutSamples: info.holdoutSamples ?? 0,
      droppedSamples: info.droppedSamples ?? 0,
      backend,
      ...(options.source !== undefined ? { source: options.source } : {}),
    },
  };
}

/**
 * The whole recipe: keep the usable samples (ERR_MODEL when fewer than minSamples), split off a seeded
 * holdout, fit on the rest, and evaluate on the holdout with the typed-array forward pass; then
 * calibrate the per-call quantiles on half the holdout and measure p99 coverage on the other half
 * (calibrate.ts). The MAE is over the whole holdout: calibration does not move the mean head.
 */
export async function trainModel(
  samples: readonly TrainingSample[],
  options: TrainOptions = {},
): Promise<TrainResult> {
  const started = performance.now();
  const o = { ...TRAIN_DEFAULTS, ...definedOnly(options) };
  const usable = usableSamples(samples, o.minSamples, options.includeFailed);
  const { train, holdout } = splitHoldout(usable, o.holdoutFraction, o.seed);
  const model = await fitModel(train, options, {
    holdoutSamples: holdout.length,
    droppedSamples: samples.length - usable.length,
  });
  const metrics = evaluate(model, holdout);
  const cal = calibrate(model, holdout, 'holdout', o.seed);
  if (cal) {
    model.calibration = cal.calibration;
    metrics.p99Coverage = cal.p99Coverage;
  }
  model.metrics = metrics;
  return { model, metrics, train, holdout, durationMs: performance.now() - started };
}

/** The network in tfjs ops, on normalised inputs; returns the raw outputs (n × heads). */
function forwardTf(x: tf.Tensor2D, ws: tf.Variable[], bs: tf.Variable[]): tf.Tensor2D {
  let h: tf.Tensor2D = x;
  for (let k = 0; k < ws.length; k++) {
    h = tf.add(tf.matMul(h, ws[k] as tf.Tensor2D), bs[k] as tf.Tensor1D);
    if (k + 1 < ws.length) h = tf.relu(h);
  }
  return h;
}

function lossOf(out: tf.Tensor2D, y: tf.Tensor2D, quantile: number | null): tf.Scalar {
  const mu = tf.slice(out, [0, 0], [-1, 1]);
  const mse = tf.mean(tf.square(tf.sub(mu, y)));
  if (quantile === null) return mse as tf.Scalar;
  const q = tf.add(mu, tf.softplus(tf.slice(out, [0, 1], [-1, 1])));
  const u = tf.sub(y, q);
  const pinball = tf.mean(tf.maximum(tf.mul(u, quantile), tf.mul(u, quantile - 1)));
  return tf.add(mse, pinball) as tf.Scalar;
}

/**
 * The same model run by tfjs, from raw feature vectors (n × inputs, row-major, NaN = missing), returning
 * n × 2 [ln latency, ln p90 (NaN without that head)]: the reference the typed-array forward pass is
 * checked against, and a batch path for the operator.
 */
export async function tfPredict(
  model: LatencyModel,
  raw: ArrayLike<number>,
  n: number,
): Promise<Float64Array> {
  await initTf();
  const d = model.layers[0]?.inputs ?? 0;
  const result = tf.tidy(() => {
    const x = tf.tensor2d(Float32Array.from(raw).subarray(0, n * d), [n, d]);
    const norm = model.normalisation;
    const mean = tf.tensor1d(norm.mean);
    const inv = tf.tensor1d(norm.std.map((s) => (s > 0 ? 1 / s : 0)));
    const clamped = tf.minimum(tf.maximum(x, tf.tensor1d(norm.min)), tf.tensor1d(norm.max));
    const z = tf.where(tf.isNaN(x), tf.zerosLike(x), tf.mul(tf.sub(clamped, mean), inv));
    let h: tf.Tensor2D = z as tf.Tensor2D;
    model.layers.forEach((l) => {
      h = tf.add(tf.matMul(h, tf.tensor2d(l.weights, [l.inputs, l.outputs])), tf.tensor1d(l.bias));
      if (l.activation === 'relu') h = tf.relu(h);
    });
    const { mean: m, std: s, min: lo, max: hi, residualOf } = model.target;
    const base: tf.Tensor2D =
      residualOf === undefined ? tf.zeros([n, 1]) : tf.slice(x, [0, residualOf], [-1, 1]);
    const mu = tf.add(tf.mul(tf.slice(h, [0, 0], [-1, 1]), s), m);
    const p90 =
      h.shape[1] === 2
        ? tf.add(
            base,
            tf.clipByValue(tf.add(mu, tf.mul(tf.softplus(tf.slice(h, [0, 1], [-1, 1])), s)), lo, hi),
          )
        : tf.fill([n, 1], NaN);
    return tf.concat([tf.add(base, tf.clipByValue(mu, lo, hi)), p90], 1);
  });
  try {
    return Float64Array.from(await result.data());
  } finally {
    result.dispose();
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
