/**
 * One training sample: what a router knew about an endpoint when it dispatched a call, and the
 * latency it then observed. Routers send these in LoadReports; the simulator produces them to train
 * the default model. Raw observables only: the model's feature file (features.ts) turns them into a
 * normalised vector, so the wire format and the model can evolve apart.
 */
export interface TrainingSample {
  /** ORCA or metrics CPU utilisation of the endpoint, 0..1 (may exceed 1), when known. */
  cpu?: number;
  /** Memory utilisation 0..1, when known. */
  memory?: number;
  /** This router's calls in flight to the endpoint at dispatch (not counting this one). */
  inflight: number;
  /** Lagged queue length or in-flight count reported by the endpoint (ORCA/telemetry), when known. */
  queueLength?: number;
  /** This router's recent latency to the endpoint over methodCostMs (1: typical; see features.ts dispatchInput). */
  recentLatencyMs: number;
  /** Request payload size in bytes. */
  payloadBytes: number;
  /** This router's baseline: the latency of this method and payload on a typical endpoint, ms (learned). */
  methodCostMs: number;
  /** The endpoint's recent error rate, 0..1. */
  errorRate: number;
  /** Age of the oldest call still open to the endpoint at dispatch, ms (0 when none). */
  oldestInflightMs: number;
  /** Age of the telemetry (cpu, memory, queueLength) at dispatch, ms. */
  telemetryAgeMs: number;
  /**
   * The latency the Predictive policy's built-in scoring expected of this call there, ms
   * (src/balancer/signals.ts builtinEstimateMs, stall floor included). The model (features version 3)
   * learns a correction to it. Optional on the type because routers older than features version 3 do
   * not send it: such samples are refused for training and evaluation (evaluate.ts usableSample,
   * features.ts sampleProblem), since their target would be relative to no estimate.
   */
  builtinEstimateMs?: number;
  /** What was observed: the call's latency, ms (a failed call counts at its deadline). */
  latencyMs: number;
  /** Whether the call failed. */
  failed: boolean;
}
