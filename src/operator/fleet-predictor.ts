import type { EndpointView } from '../telemetry/fleet.js';

/** The latency model in force, as status shows it (status.model and the ModelReady condition). */
export interface ModelStatus {
  version?: string;
  samples: number;
  holdoutError?: number;
  /** Share of holdout calls under their predicted p99 (the half the calibration did not use). */
  p99CoverageHoldout?: number;
  /** Share of the routers' calls since install under their predicted p99, and how many. */
  p99CoverageLive?: number;
  liveSamples?: number;
  ready: boolean;
  reason: string;
}

/** A typical call's predicted latency on an endpoint, and its 90th percentile when the model gives one. */
export interface Prediction {
  latencyMs: number;
  p90Ms?: number;
}

/**
 * What the fleet view asks of the latency model (ModelManager is the one): whether one is in force,
 * what status says of it, and a prediction per endpoint from the fleet's view of it.
 */
export interface Predictor {
  readonly ready: boolean;
  readonly status: ModelStatus;
  predict(
    pool: string,
    address: string,
    view: EndpointView | undefined,
    baselineMs?: number,
  ): Prediction | undefined;
  /**
   * The q-quantile of a typical call of a method on the endpoint, ms (fleet-features.ts methodInput):
   * the model's own calibrated figure (src/model/quantiles.ts), for per-method deadlines; undefined
   * without a model.
   */
  methodQuantileMs?(
    view: EndpointView,
    poolTypicalMs: number,
    methodMs: number,
    q: number,
  ): number | undefined;
}
