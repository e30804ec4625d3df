import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { WireTrainingSample } from '../control/messages.js';
import type { RoutingState } from '../control/routing-state.js';
import { loadModel, modelToJson, modelVersion } from '../model/artifact.js';
import { FEATURE_COUNT, featurizeInto } from '../model/features.js';
import { ForwardModel } from '../model/forward.js';
import type { LatencyModel } from '../model/model.js';
import {
  DEFAULT_MAX_CORRECTION,
  DEFAULT_TRUST,
  blendPrediction,
  latencyEstimateMs,
  seenEstimateRange,
} from '../model/predictor.js';
import { refit, type RefitResult } from '../model/refit.js';
import { P99, calibrate, scoredSamples, splitScored } from '../model/calibrate.js';
import { evaluate, usableSample } from '../model/evaluate.js';
import { coverage, predictQuantileMs } from '../model/quantiles.js';
import type { TrainingSample } from '../model/sample.js';
import type { EndpointView } from '../telemetry/fleet.js';
import { errorMessage } from '../util/errors.js';
import { roundTo } from '../util/round.js';
import { fleetInput, methodInput } from './fleet-features.js';
import type { ModelStatus, Prediction, Predictor } from './fleet-predictor.js';

/** Live p99 coverage may miss 0.99 by this much before the quantiles are recalibrated (the issue's ± 0.5). */
const COVERAGE_TOLERANCE = 0.005;

export interface LiveCoverage {
  coverage: number;
  samples: number;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * The operator's latency model (docs/architecture.md): the shipped default at start, refitted on the routers'
 * samples every retrain interval and promoted only when its holdout error is lower. It predicts each
 * endpoint's latency for status and weights, and is sent to routers, which evaluate it per pick.
 */
export class ModelManager implements Predictor {
  private model?: LatencyModel;
  private fwd?: ForwardModel;
  private version?: string;
  private readonly samples: TrainingSample[] = [];
  private reason = 'no model loaded yet';
  private refitting = false;
  private readonly error: Gauge;
  private readonly coverage: Gauge<'set'>;
  /** Samples added since the model in force was installed: the live figures use only these. */
  private fresh = 0;
  private live?: LiveCoverage;
  private readonly raw = new Float64Array(FEATURE_COUNT);
  private readonly out = new Float64Array(2);

  constructor(
    private readonly routing: RoutingState,
    private readonly log: Logger,
    registry: Registry,
    private readonly maxSamples = 50_000,
  ) {
    this.error = new Gauge({
      name: 'sibyl_model_holdout_error',
      help: 'Holdout mean absolute error of ln latency of the model in force.',
      registers: [registry],
    });
    this.coverage = new Gauge({
      name: 'sibyl_model_p99_coverage',
      help: 'Share of calls at or below their predicted p99 (goal 0.99): set="holdout" on the half of the holdout the calibration did not use, set="live" on routers\' samples since the model was installed.',
      labelNames: ['set'],
      registers: [registry],
    });
  }

  async loadDefault(dir: string): Promise<void> {
    try {
      this.install(await loadModel(dir), `the default model from ${dir}`);
    } catch (e) {
      this.reason = `no default model: ${errorMessage(e)}`;
      this.log.warn({ dir, err: errorMessage(e) }, 'no default latency model; Predictive pools fall back');
    }
  }

  get status(): ModelStatus {
    return {
      ...(this.version ? { version: this.version } : {}),
      samples: this.samples.length,
      ...(this.model?.metrics ? { holdoutError: roundTo(this.model.metrics.maeLog, 4) } : {}),
      ...(this.model?.metrics?.p99Coverage !== undefined
        ? { p99CoverageHoldout: roundTo(this.model.metrics.p99Coverage, 4) }
        : {}),
      ...(this.live
        ? { p99CoverageLive: roundTo(this.live.coverage, 4), liveSamples: this.live.samples }
        : {}),
      ready: this.fwd !== undefined,
      reason: this.reason,
    };
  }

  get ready(): boolean {
    return this.fwd !== undefined;
  }

  addSamples(wire: readonly WireTrainingSample[]): void {
    for (const s of wire) this.samples.push(s);
    this.fresh += wire.length;
    if (this.samples.length > this.maxSamples) this.samples.splice(0, this.samples.length - this.maxSamples);
  }

  /** The routers' usable samples since the model in force was installed, oldest first. */
  private freshSamples(): TrainingSample[] {
    return this.samples.slice(-Math.min(this.fresh, this.samples.length)).filter((x) => usableSample(x));
  }

  /**
   * Live p99 coverage: the share of the routers' calls since the model was installed that took no longer
   * than their predicted p99 (quantiles.ts), with the calibration in force. Updates status and the
   * gauge; undefined until there are samples.
   */
  measureLiveCoverage(): LiveCoverage | undefined {
    const usable = this.freshSamples();
    if (!this.fwd || usable.length === 0) return undefined;
    const c = coverage(scoredSamples(this.fwd, usable), P99, this.model?.calibration);
    this.live = { coverage: c, samples: usable.length };
    this.coverage.set({ set: 'live' }, c);
    return this.live;
  }

  /**
   * Split-conformal recalibration on live traffic (quantiles.ts): when the live p99 coverage misses its
   * goal by more than COVERAGE_TOLERANCE, the scores are refitted on half of the routers' samples since
   * install and judged on the other half; the new calibration is installed (a new model version, which
   * routers load) only if its coverage there is closer to the goal than the calibration in force. The
   * shipped model is calibrated on the simulator; real backends' tails differ, and the scores are
   * cheap to refit where the weights are not.
   */
  recalibrate(seed = 1): string | undefined {
    if (!this.model || !this.fwd) return undefined;
    const usable = this.freshSamples();
    const live = this.measureLiveCoverage();
    if (!live || Math.abs(live.coverage - P99) <= COVERAGE_TOLERANCE) return undefined;
    const cal = calibrate(this.fwd, usable, 'live', seed);
    if (!cal) return undefined;
    const { test } = splitScored(scoredSamples(this.fwd, usable), seed);
    const before = coverage(test, P99, this.model.calibration);
    if (Math.abs(cal.p99Coverage - P99) >= Math.abs(before - P99)) return undefined;
    const why =
      `quantiles recalibrated on ${usable.length} live samples: p99 coverage ` +
      `${pct(before)} → ${pct(cal.p99Coverage)} on the half not used to fit`;
    this.install({ ...this.model, calibration: cal.calibration }, why);
    return why;
  }

  /**
   * The model in force scored on the routers' samples gathered so far (mean absolute error of ln
   * latency): how well it fits live traffic, as opposed to its training holdout.
   */
  liveError(): { maeLog: number; samples: number } | undefined {
    const usable = this.samples.filter((x) => usableSample(x));
    if (!this.fwd || usable.length === 0) return undefined;
    return { maeLog: evaluate(this.fwd, usable).maeLog, samples: usable.length };
  }

  /** Trains a candidate on the samples gathered so far; promotes it only if it beats the model in force. */
  async refit(minSamples: number): Promise<RefitResult | undefined> {
    if (this.refitting || this.samples.length < minSamples) return undefined;
    this.refitting = true;
    try {
      const r = await refit(this.model, this.samples, { minSamples });
      if (r.promoted && r.model) this.install(r.model, r.reason);
      else this.reason = r.reason;
      this.log.info({ promoted: r.promoted, reason: r.reason, samples: this.samples.length }, 'model refit');
      return r;
    } finally {
      this.refitting = false;
    }
  }

  /**
   * A typical call's latency on the endpoint, from the fleet's view of it. The model (features v3)
   * corrects a built-in estimate; at the fleet level that estimate is what the fleet observes there
   * now (the p50 of the routers' latest reports), and the correction goes through the same blend and safety net as in the routers
   * (predictor.ts blendPrediction), so status shows what routers act on: outside what the model was
   * trained on, the observed figure itself.
   */
  predict(
    _pool: string,
    _address: string,
    v: EndpointView | undefined,
    baselineMs?: number,
  ): Prediction | undefined {
    if (!this.fwd || !v) return undefined;
    const input = fleetInput(v, baselineMs);
    const estimate = input.builtinEstimateMs as number;
    featurizeInto(input, this.raw);
    this.fwd.predictInto(this.raw, 0, this.out);
    const bounds = {
      ...seenEstimateRange(this.fwd),
      maxCorrection: DEFAULT_MAX_CORRECTION,
      trust: DEFAULT_TRUST,
    };
    const blend = (ms: number | undefined) =>
      ms === undefined ? undefined : (blendPrediction(estimate, ms, bounds) ?? estimate);
    const mean = blend(latencyEstimateMs(this.out[0] as number, this.out[1] as number, 'mean'));
    const p90 = blend(latencyEstimateMs(this.out[0] as number, this.out[1] as number, 'p90'));
    return mean === undefined ? undefined : { latencyMs: mean, ...(p90 !== undefined ? { p90Ms: p90 } : {}) };
  }

  /**
   * The q-quantile of a typical call of a method on the endpoint (fleet-features.ts methodInput): the
   * heads and the calibration in force (quantiles.ts predictQuantileMs), not the blend predict() applies,
   * since a deadline needs the call's latency distribution. Undefined without a model or for a
   * figure that is not finite.
   */
  methodQuantileMs(v: EndpointView, poolTypicalMs: number, methodMs: number, q: number): number | undefined {
    if (!this.fwd || !(q > 0 && q < 1) || !(methodMs > 0)) return undefined;
    featurizeInto(methodInput(v, poolTypicalMs, methodMs), this.raw);
    const ms = predictQuantileMs(this.fwd, this.raw, this.out, q);
    return Number.isFinite(ms) && ms > 0 ? ms : undefined;
  }

  private install(model: LatencyModel, why: string): void {
    this.model = model;
    this.fwd = new ForwardModel(model);
    this.version = modelVersion(model);
    this.reason = why;
    this.fresh = 0;
    this.live = undefined;
    this.coverage.reset();
    if (model.metrics) this.error.set(model.metrics.maeLog);
    if (model.metrics?.p99Coverage !== undefined)
      this.coverage.set({ set: 'holdout' }, model.metrics.p99Coverage);
    this.routing.setModel({ version: this.version, artifactJson: modelToJson(model) });
    this.log.info({ version: this.version, why }, 'latency model in force');
  }
}
