import { isSibylError, errorMessage } from '../util/errors.js';
import { calibrate } from './calibrate.js';
import { evaluate, usableSample } from './evaluate.js';
import { FEATURES_VERSION } from './features.js';
import type { HoldoutMetrics, LatencyModel } from './model.js';
import type { TrainingSample } from './sample.js';
import { TRAIN_DEFAULTS, fitModel, splitHoldout, usableSamples, type TrainOptions } from './train.js';

/**
 * The operator's refit step (docs/architecture.md, "Model"): every retrainInterval, train a candidate on the routers'
 * samples and promote it only if it predicts better than the model in force. Both are judged on the
 * same holdout (never seen by the candidate's training) with the typed-array forward pass routers run;
 * the figure is the MAE of ln latency. Pure apart from training itself: no clock, no I/O, no global
 * state; the caller writes status, events (ModelPromoted / ModelRejected) and metrics from the result.
 */
export interface RefitOptions extends TrainOptions {
  /**
   * Evaluate on these samples instead of a holdout drawn from `samples` (then all usable samples train
   * the candidate). Lets the operator keep a fixed recent holdout across refits.
   */
  holdout?: readonly TrainingSample[];
  /** The candidate must beat the current error by at least this much (ln units; default 0: any gain). */
  minImprovement?: number;
  /** Injected trainer (tests); default fitModel. */
  fit?: (train: readonly TrainingSample[], options: TrainOptions) => Promise<LatencyModel>;
}

export interface RefitResult {
  promoted: boolean;
  /** One sentence a person can read, for status, events and logs. */
  reason: string;
  /** Holdout MAE of ln latency; undefined when no candidate could be trained. */
  candidateError?: number;
  /** The current model's holdout MAE on the same samples; undefined without a usable current model. */
  currentError?: number;
  /** The model in force after this step: the candidate when promoted, else the current one. */
  model?: LatencyModel;
  candidate?: LatencyModel;
  candidateMetrics?: HoldoutMetrics;
  currentMetrics?: HoldoutMetrics;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));

export async function refit(
  current: LatencyModel | undefined,
  samples: readonly TrainingSample[],
  options: RefitOptions = {},
): Promise<RefitResult> {
  const seed = options.seed ?? TRAIN_DEFAULTS.seed;
  const min = options.minSamples ?? TRAIN_DEFAULTS.minSamples;
  const keep = (model: LatencyModel | undefined, reason: string): RefitResult => ({
    promoted: false,
    reason,
    ...(model ? { model } : {}),
  });

  let train: TrainingSample[];
  let holdout: TrainingSample[];
  try {
    const usable = usableSamples(samples, min, options.includeFailed);
    if (options.holdout) {
      train = usable;
      holdout = options.holdout.filter((s) => usableSample(s, options.includeFailed));
    } else {
      ({ train, holdout } = splitHoldout(
        usable,
        options.holdoutFraction ?? TRAIN_DEFAULTS.holdoutFraction,
        seed,
      ));
    }
  } catch (e) {
    if (isSibylError(e, 'ERR_MODEL')) return keep(current, `no refit: ${e.message}`);
    throw e;
  }
  if (holdout.length === 0)
    return keep(current, 'no refit: no usable holdout samples to judge a candidate on');

  let candidate: LatencyModel;
  try {
    const fit = options.fit ?? ((t, o) => fitModel(t, o, { holdoutSamples: holdout.length }));
    candidate = await fit(train, options);
  } catch (e) {
    if (isSibylError(e, 'ERR_MODEL'))
      return keep(current, `candidate rejected: training failed (${errorMessage(e)})`);
    throw e;
  }
  const candidateMetrics = evaluate(candidate, holdout);
  // the routers' samples: the candidate's quantiles are calibrated on live traffic
  const cal = calibrate(candidate, holdout, 'live', seed);
  if (cal) {
    candidate.calibration = cal.calibration;
    candidateMetrics.p99Coverage = cal.p99Coverage;
  }
  candidate.metrics = candidateMetrics;
  const candidateError = candidateMetrics.maeLog;
  const base = { candidate, candidateMetrics, candidateError };

  if (!Number.isFinite(candidateError)) {
    return { ...keep(current, `candidate rejected: its holdout error is ${fmt(candidateError)}`), ...base };
  }
  if (!current) {
    return {
      promoted: true,
      reason: `candidate promoted: no current model (holdout MAE ${fmt(candidateError)} on ${holdout.length} samples)`,
      model: candidate,
      ...base,
    };
  }
  if (current.featuresVersion !== FEATURES_VERSION) {
    return {
      promoted: true,
      reason: `candidate promoted: the current model uses features version ${current.featuresVersion}, this build ${FEATURES_VERSION}`,
      model: candidate,
      ...base,
    };
  }
  const currentMetrics = evaluate(current, holdout);
  const currentError = currentMetrics.maeLog;
  const margin = options.minImprovement ?? 0;
  const both = { ...base, currentMetrics, currentError };
  if (candidateError < currentError - margin) {
    return {
      promoted: true,
      reason: `candidate promoted: holdout MAE ${fmt(candidateError)} < current ${fmt(currentError)} on ${holdout.length} samples`,
      model: candidate,
      ...both,
    };
  }
  return {
    promoted: false,
    reason:
      `candidate rejected: holdout MAE ${fmt(candidateError)} is not below current ${fmt(currentError)}` +
      `${margin > 0 ? ` − ${fmt(margin)}` : ''} on ${holdout.length} samples`,
    model: current,
    ...both,
  };
}
