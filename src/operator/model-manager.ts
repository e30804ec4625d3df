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
import { evaluate, usableSample } from '../model/evaluate.js';
import type { TrainingSample } from '../model/sample.js';
import type { EndpointView } from '../telemetry/fleet.js';
import { errorMessage } from '../util/errors.js';
import { roundTo } from '../util/round.js';
import { fleetInput } from './fleet-features.js';
import type { ModelStatus, Prediction, Predictor } from './fleet-predictor.js';

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
      ready: this.fwd !== undefined,
      reason: this.reason,
    };
  }

  get ready(): boolean {
    return this.fwd !== undefined;
  }

  addSamples(wire: readonly WireTrainingSample[]): void {
    for (const s of wire) this.samples.push(s);
    if (this.samples.length > this.maxSamples) this.samples.splice(0, this.samples.length - this.maxSamples);
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

  private install(model: LatencyModel, why: string): void {
    this.model = model;
    this.fwd = new ForwardModel(model);
    this.version = modelVersion(model);
    this.reason = why;
    if (model.metrics) this.error.set(model.metrics.maeLog);
    this.routing.setModel({ version: this.version, artifactJson: modelToJson(model) });
    this.log.info({ version: this.version, why }, 'latency model in force');
  }
}
