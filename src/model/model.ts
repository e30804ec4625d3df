import { seededRandom } from '../util/clock.js';
import type { Normalisation } from './features.js';

/**
 * The latency model as plain data: what training produces, what the artefact stores, what the
 * typed-array forward pass (forward.ts) runs. No tfjs here, so routers never load it.
 *
 * A multilayer perceptron: dense layers y = act(x · W + b), W row-major `inputs × outputs`
 * (W[i · outputs + j] connects input i to output j). The last layer is linear with one or two outputs,
 * read in the normalised target space (t = (ln latency − base − target.mean) / target.std):
 *
 *   μ          = target.mean + target.std · y0
 *   logLatency = base + clamp(μ, target.min, target.max)
 *   logP90     = base + clamp(μ + target.std · softplus(y1), target.min, target.max)   (two-output models)
 *
 * where base is 0, or for a residual model (target.residualOf, features version 3) the raw value of that
 * input: ln of the built-in scoring's estimate (features.ts RESIDUAL_FEATURE), so the network learns
 * only a correction to it and target.min/max bound that correction.
 *
 * Writing the p90 as the mean plus a positive gap means the two heads can never cross (the clamp is
 * monotone, so it keeps the order). The clamp to the range of ln latency seen in training keeps a
 * prediction within what the model has evidence for.
 */
export type Activation = 'relu' | 'linear';

export interface DenseLayer {
  inputs: number;
  outputs: number;
  activation: Activation;
  /** inputs × outputs, row-major. */
  weights: Float32Array;
  bias: Float32Array;
}

export interface TargetScaling {
  mean: number;
  std: number;
  /** Range of ln latency in the training split: predictions are clamped to it. */
  min: number;
  max: number;
  /** The quantile of the second head (0.9), or null for a mean-only model. */
  quantile: number | null;
  /**
   * Residual model: the index of the raw input whose value the target is relative to (ln latency −
   * raw[residualOf]), added back by the forward pass; absent: the target is ln latency itself.
   */
  residualOf?: number;
}

/** Holdout figures, in natural-log units of latency (an MAE of 0.2 ≈ a typical error of ×1.22). */
export interface HoldoutMetrics {
  samples: number;
  /** Mean absolute error of ln latency. */
  maeLog: number;
  rmseLog: number;
  /**
   * The MAE of always predicting the training split's mean target: ln latency, or for a residual model
   * the built-in estimate times the mean correction. What the model must beat.
   */
  baselineMaeLog: number;
  /** Share of holdout latencies at or below the predicted p90 (≈ 0.9 when calibrated). */
  p90Coverage?: number;
  /**
   * Share of holdout latencies at or below their per-call predicted p99 (quantiles.ts), measured on the
   * half of the holdout the calibration did not use; goal 0.99.
   */
  p99Coverage?: number;
}

export interface TrainingInfo {
  seed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  samples: number;
  holdoutSamples: number;
  /** Samples left out: invalid, or failed calls (the balancer prices failures through errorRate). */
  droppedSamples: number;
  backend: string;
  /** Where the samples came from (e.g. "simulator: heterogeneous, pause; seed 1"). */
  source?: string;
}

/** Conformal scores for per-call quantiles (quantiles.ts reads them). */
export interface QuantileCalibration {
  /** Quantile levels, ascending, each strictly between 0 and 1. */
  levels: number[];
  /** The score s(level) at each level: an empirical quantile of (t − μ) / σ, non-decreasing. */
  scores: number[];
  /** How many samples the scores came from. */
  samples: number;
  /** Where they came from: "holdout" (training's calibration half) or "live" (routers' samples). */
  source: 'holdout' | 'live';
}

export interface LatencyModel {
  featuresVersion: number;
  featureNames: string[];
  normalisation: Normalisation;
  target: TargetScaling;
  layers: DenseLayer[];
  /** Conformal scores for per-call quantiles (quantiles.ts); absent: the log-normal reading alone. */
  calibration?: QuantileCalibration;
  metrics?: HoldoutMetrics;
  training?: TrainingInfo;
}

export interface ModelShape {
  inputs: number;
  /** Hidden layer widths, ReLU (default [32, 16]). */
  hidden?: number[];
  /** 2 = mean and p90 heads; 1 = mean only (default 2). */
  outputs?: 1 | 2;
  seed?: number;
}

/**
 * Fresh layers: He-uniform weights for the ReLU layers (limit √(6 / fan_in), He et al. 2015) and
 * Glorot-uniform for the linear output (limit √(6 / (fan_in + fan_out))), zero biases; from a seeded
 * generator, so the same seed gives the same start on every backend.
 */
export function initLayers(shape: ModelShape): DenseLayer[] {
  const rnd = seededRandom(shape.seed ?? 1);
  const widths = [shape.inputs, ...(shape.hidden ?? [32, 16]), shape.outputs ?? 2];
  const layers: DenseLayer[] = [];
  for (let k = 0; k + 1 < widths.length; k++) {
    const inputs = widths[k] as number;
    const outputs = widths[k + 1] as number;
    const last = k + 2 === widths.length;
    const limit = last ? Math.sqrt(6 / (inputs + outputs)) : Math.sqrt(6 / inputs);
    const weights = new Float32Array(inputs * outputs);
    for (let i = 0; i < weights.length; i++) weights[i] = (2 * rnd() - 1) * limit;
    layers.push({
      inputs,
      outputs,
      activation: last ? 'linear' : 'relu',
      weights,
      bias: new Float32Array(outputs),
    });
  }
  return layers;
}

/** A deep copy (typed arrays included). */
export function cloneModel(m: LatencyModel): LatencyModel {
  return {
    ...m,
    featureNames: [...m.featureNames],
    normalisation: {
      mean: [...m.normalisation.mean],
      std: [...m.normalisation.std],
      min: [...m.normalisation.min],
      max: [...m.normalisation.max],
    },
    target: { ...m.target },
    layers: m.layers.map((l) => ({ ...l, weights: l.weights.slice(), bias: l.bias.slice() })),
    calibration: m.calibration && {
      ...m.calibration,
      levels: [...m.calibration.levels],
      scores: [...m.calibration.scores],
    },
    metrics: m.metrics && { ...m.metrics },
    training: m.training && { ...m.training },
  };
}
