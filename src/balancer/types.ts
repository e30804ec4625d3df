import type { Clock, Random } from '../util/clock.js';
import type { PolicyName } from '../api/backendpool.js';

/**
 * The balancing contract (DESIGN.md §5), after grpc-js's load-balancer.ts: one small interface, a
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
}

export interface BalancerDeps {
  clock: Clock;
  random: Random;
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
}

export type BalancerFactory = (deps: BalancerDeps, options?: Record<string, unknown>) => Balancer;
