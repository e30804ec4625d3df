import type { Clock, Random } from '../util/clock.js';
import type { PolicyName } from '../api/backendpool.js';

/**
 * The balancing contract (docs/architecture.md, "Balancing, breakers and limits"), after grpc-js's load-balancer.ts: one small interface, a
 * registry by name, one implementation per file. The same code runs in the router and in the simulator.
 *
 * A policy sees candidates (endpoints whose breaker admits a call), the request's features, and the
 * outcomes of calls it placed. It owns whatever per-endpoint state it needs, keyed by endpoint id.
 * Policies are pure: time and randomness come from `BalancerDeps`.
 */

/** ORCA load report figures (xds.data.orca.v3.OrcaLoadReport), as last seen for an endpoint. */
export interface LoadReport {
  cpu?: number; // cpu_utilization, 0..1 (may exceed 1 on some servers)
  memory?: number; // mem_utilization, 0..1
  utilization?: number; // application_utilization or rps-based
  atMs: number; // when it was received (Clock time)
}

/** Figures the operator pushes for an endpoint (from its model and fleet-wide view); all optional. */
export interface EndpointHints {
  weight?: number; // relative share, default 1
  predictedLatencyMs?: number; // operator's prediction for a typical call
  predictedP90Ms?: number;
  /**
   * The operator's capacity weight as a cost relative to the pool's mean endpoint (mean(w) / w: 2 is
   * half the pool's mean capacity). A prior where no predicted latency is given (xDS endpoint weights
   * reach in-process clients, src/client); scaled by the router's own typical latency.
   */
  relativeCost?: number;
  errorRate?: number; // fleet-wide recent error rate, 0..1
  queueLength?: number; // lagged, from telemetry
  cpu?: number;
  memory?: number;
  atMs?: number; // when the operator computed them (Clock time on the router)
}

/** An endpoint as the router tracks it. `inflight` is this router's own count of open calls. */
export interface Endpoint {
  readonly id: string; // stable key, e.g. "10.0.0.5:50051"
  readonly address: string;
  inflight: number;
  /** Start time (Clock ms) of the oldest call still open here, or undefined; catches a pause at once. */
  oldestInflightStartMs?: number;
  load?: LoadReport;
  hints?: EndpointHints;
}

export interface PickRequest {
  method: string; // full method name, /pkg.Service/Method
  payloadBytes: number; // request size when known (first message), else 0
}

export interface CallOutcome {
  ok: boolean; // a response the client can use (grpc-status OK or an application error that is not the server's fault)
  code: number; // grpc status code
  latencyMs: number;
  startedAtMs: number;
  /**
   * The router ended this try itself before it had an answer, and not as the call's failure: a hedge
   * or first try that lost the race to another try, a try cut at its own per-try deadline
   * (spec.timeout.predicted), or a try whose client went away. `latencyMs` is then a lower bound of
   * the latency the try would have had (right-censored), not a sample of it, and `code` (CANCELLED,
   * DEADLINE_EXCEEDED) is the router's doing, not the endpoint's answer.
   *
   * Latency figures must not take it as an answer: a hedge cancelled 0.1 ms after it was sent, taken as
   * a 0.1 ms success, made its endpoint look fast. Nor is it a failure for a policy: a try cut at 2 × its
   * predicted p99 was slow, not failed, and charging it a policy's failure penalty (the pool's timeout)
   * sent load away from an endpoint that answers every call (src/balancer/signals.ts has the
   * treatment: a lower bound above what was expected is evidence of slowness; below it, none). The
   * circuit breaker still reads `ok` (a try deadline is DEADLINE_EXCEEDED, a failure: a black hole's
   * tries all expire, as Envoy's outlier detection counts per-try timeouts as gateway failures).
   * A call that fails at its own deadline is not censored: that is the client's outcome.
   */
  censored?: boolean;
}

/**
 * One endpoint and one request as this router sees them now. The object `features` fills is reused
 * between calls; copy what you keep. Absent figures are NaN (ages: Infinity).
 */
export interface PredictiveFeatures {
  /** Expected latency of this request (method, payload) on a typical endpoint of the pool, ms. */
  baselineMs: number;
  payloadKiB: number;
  /** The endpoint's recent latency over baselineMs (own successful calls, decayed); NaN when none. */
  latencyRatio: number;
  /** Decayed count of own successful calls behind latencyRatio. */
  samples: number;
  /** This router's calls in flight there, and the age of the oldest (0 when none), ms. */
  inflight: number;
  oldestInflightAgeMs: number;
  /** Own decayed failure rate, shrunk towards the fleet-wide rate from the operator. */
  errorRate: number;
  /** Operator's figures (hints) and their age; freshness = exp(−age/τh), 0 without hints. */
  hintLatencyMs: number;
  hintAgeMs: number;
  hintFreshness: number;
  queueLength: number;
  /** ORCA cpu_utilization, else the operator's cpu figure, times its freshness (stale fades to 0). */
  cpu: number;
  /** The endpoint's CPU as last reported (ORCA, else the operator's figure), unfaded; NaN when none. */
  reportedCpu: number;
  memory: number;
  /** A typical call's latency on a typical endpoint (all methods and payloads), ms (typicalMs). */
  typicalMs: number;
  /**
   * The work this router has put ahead of a new call there: Σ baseline of its own calls in flight
   * (counted at onCallStarted), and a typical call for any in flight it did not see start, ms.
   */
  aheadMs: number;
  /** S: the predicted service time of this request there (serviceEstimateMs), ms. */
  serviceMs: number;
  /** The built-in scoring's latency estimate of this request there (builtinEstimateMs), ms. */
  estimateMs: number;
}

/**
 * A learned model's prediction in ms, or undefined to use the heuristic. `features.estimateMs` is the
 * heuristic's own figure: the model takes it as an input and predicts a correction to it
 * (src/model/predictor.ts), and returns undefined when it has no grounds to overrule it.
 */
export type PredictFn = (ep: Endpoint, req: PickRequest, features: PredictiveFeatures) => number | undefined;

/** What a policy is given besides its config: time, randomness and, for Predictive, the model. */
export interface BalancerDeps {
  clock: Clock;
  random: Random;
  /** The latency model's prediction (absent, or answering undefined: the built-in estimate). */
  predict?: PredictFn;
}

export interface Balancer {
  readonly name: PolicyName | string;
  /** Chooses one of `candidates` (never empty) for `req`. Must not mutate candidates. Costs microseconds. */
  pick(candidates: readonly Endpoint[], req: PickRequest): Endpoint;
  /** A call was sent to `ep` (after the router raised ep.inflight). */
  onCallStarted?(ep: Endpoint, req: PickRequest): void;
  /** A call to `ep` ended (after the router lowered ep.inflight). */
  onCallEnded(ep: Endpoint, req: PickRequest, outcome: CallOutcome): void;
  /** The endpoint left the pool: drop its state. */
  onEndpointRemoved?(id: string): void;
  /**
   * The endpoint's circuit breaker lets it be tried again (Open → HalfOpen), or the endpoint is
   * reachable again after failed connects (src/router/session-pool.ts). A policy that remembers
   * the failures that opened it sets them aside here, or it would starve the very trial calls that
   * decide whether the endpoint is back: PeakEwma charged each failure 1 s, which decays with τ = 10 s,
   * so in a 5 ms pool its two random choices would not pick the endpoint for some 50 s. A trial that
   * fails is charged again, and the breaker opens again.
   */
  onEndpointReadmitted?(id: string): void;
  /**
   * What the policy knows of `ep` for `req` now, for a training sample taken at dispatch (before the
   * call is counted there). Only policies that keep per-endpoint figures (Predictive) have it.
   */
  dispatchFeatures?(ep: Endpoint, req: PickRequest): PredictiveFeatures;
  /**
   * Exploration apart from the pick: an endpoint of `candidates` (not `picked`, where the client's call
   * goes) this policy wants measured with a copy of `req` now, or undefined. Asked once per call after
   * the pick (src/balancer/picker.ts Picker.probe), only where a copy can be sent: the router for an
   * idempotent unary call, the simulator for any. The copy is a probe no client waits on: its answer is
   * discarded, and its start and end reach the policy like any call's (onCallStarted, onCallEnded).
   *
   * Why apart: a policy that avoids a slow endpoint only learns it has recovered by sending it a call,
   * and if that is a client's call, the client waits out the slowness just so the endpoint is measured.
   * A `make demo` run showed it: Predictive's exploration, real calls sent to a slowed endpoint, gave
   * it a p99 of 82 ms to PeakEwma's 17 ms. A shadow copy measures the endpoint at the cost of its
   * capacity only (Envoy's request mirroring sends such copies, for other reasons).
   */
  probeTarget?(candidates: readonly Endpoint[], req: PickRequest, picked: Endpoint): Endpoint | undefined;
}
