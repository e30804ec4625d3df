import { FEATURE_COUNT, featurizeInto, targetOf } from './features.js';
import { ForwardModel } from './forward.js';
import type { LatencyModel } from './model.js';
import { coverage, fitCalibration, type QuantileCalibration, type ScoredSample } from './quantiles.js';
import type { TrainingSample } from './sample.js';
import { splitHoldout } from './split.js';

/**
 * Calibrating a model's per-call quantiles (quantiles.ts) on samples it did not train on, and the figure
 * the issue asks for: the share of calls under their predicted p99. The samples are split in two by
 * seed: the scores are fitted on one half and coverage is measured on the other, so the figure is not
 * the calibration grading itself (with n calibration samples the conformal bound alone would promise it).
 */

/** Fewer samples than this and no calibration is fitted: p99 needs ≥ 99 in its half to mean anything. */
export const MIN_CALIBRATION_SAMPLES = 200;

/** The goal: calls under their predicted p99. */
export const P99 = 0.99;

/** The model's heads on each sample, beside its observed ln latency. */
export function scoredSamples(
  model: LatencyModel | ForwardModel,
  samples: readonly TrainingSample[],
): ScoredSample[] {
  const fwd = model instanceof ForwardModel ? model : new ForwardModel(model);
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2);
  return samples.map((s) => {
    featurizeInto(s, raw);
    fwd.predictInto(raw, 0, out);
    return {
      t: targetOf(s.latencyMs),
      logLatency: out[0] as number,
      logP90: fwd.outputs === 2 ? (out[1] as number) : NaN,
    };
  });
}

/** The seeded halves calibrate() fits on and tests on. */
export function splitScored(
  scored: readonly ScoredSample[],
  seed: number,
): { fit: ScoredSample[]; test: ScoredSample[] } {
  const { train: fit, holdout: test } = splitHoldout(scored, 0.5, seed ^ 0xca1);
  return { fit, test };
}

export interface Calibrated {
  calibration: QuantileCalibration;
  /** Share of the other half's calls at or below their calibrated predicted p99. */
  p99Coverage: number;
  /** How many samples that share is over. */
  tested: number;
}

/**
 * Fits the scores on a seeded half of `samples` (already usable: evaluate.ts usableSample) and measures
 * p99 coverage on the other half; undefined with fewer than MIN_CALIBRATION_SAMPLES.
 */
export function calibrate(
  model: LatencyModel | ForwardModel,
  samples: readonly TrainingSample[],
  source: QuantileCalibration['source'],
  seed: number,
): Calibrated | undefined {
  if (samples.length < MIN_CALIBRATION_SAMPLES) return undefined;
  const { fit, test } = splitScored(scoredSamples(model, samples), seed);
  const calibration = fitCalibration(fit, source);
  return { calibration, p99Coverage: coverage(test, P99, calibration), tested: test.length };
}
