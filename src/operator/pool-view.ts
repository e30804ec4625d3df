import type { ActiveAnomaly } from '../anomaly/monitor.js';
import type { BreakerStateName, EndpointStatus, PolicyName } from '../api/backendpool.js';
import type { ResolvedPoolSpec } from '../api/resolve.js';
import type { EndpointView } from '../telemetry/fleet.js';
import type { ResourceFigures } from '../telemetry/resources.js';
import type { PoolObject } from './context.js';
import type { Resolution, ResolvedEndpoint } from './endpoints.js';
import type { MethodDeadline } from './deadlines.js';
import type { ModelStatus, Prediction } from './fleet-predictor.js';

/** Live figures for one endpoint, merged into status (status-figures.ts makes them). */
export type EndpointFigures = Omit<EndpointStatus, 'address' | 'pod' | 'ready'>;

/** One endpoint as the fleet sees it: the facts that both status and routing are made from. */
export interface AssessedEndpoint {
  readonly endpoint: ResolvedEndpoint;
  /** The fleet's telemetry for it (absent: no router reported it within the window). */
  readonly view?: EndpointView;
  /** The operator's fleet-wide breaker holds it open for every router. */
  readonly forceOpen: boolean;
  /** Open when the fleet breaker is, or when most routers that call it have theirs open. */
  readonly breaker: BreakerStateName;
  readonly prediction?: Prediction;
  /** CPU and memory from the metrics API or the backend's Prometheus endpoint. */
  readonly resources?: ResourceFigures;
  /** Its share of traffic relative to the best endpoint (absent while nothing is predicted). */
  readonly weight?: number;
}

/** What the control plane knows of a pool beyond the API server (fleet-view.ts). */
export interface FleetFacts {
  /** Empty when the endpoints could not be resolved. */
  readonly endpoints: readonly AssessedEndpoint[];
  /** Each endpoint's status figures, by address. */
  readonly figures: ReadonlyMap<string, EndpointFigures>;
  /** Routers subscribed to the pool. */
  readonly routers: number;
  /** Anomalies active now, for the Degraded condition. */
  readonly anomalies: readonly ActiveAnomaly[];
  /** The latency model in force. */
  readonly model: ModelStatus;
  /** With spec.timeout.predicted: each method's per-try deadline (deadlines.ts). */
  readonly deadlines?: readonly MethodDeadline[];
}

/**
 * A pool as one reconcile resolved it: the object, its spec with every default applied, its
 * endpoints, the policy in force and, with a control plane, the fleet's facts. Routing is published
 * from it and status is built from it, so the two never disagree.
 */
export interface PoolView {
  readonly key: string;
  readonly pool: PoolObject;
  readonly spec: ResolvedPoolSpec;
  readonly resolution: Resolution;
  /** The policy routers run: the spec's, or its fallback while Predictive has no model. */
  readonly policy: PolicyName;
  /** Absent without a control plane (status only). */
  readonly fleet?: FleetFacts;
}

/** The control plane's part of a pool's reconcile (FleetView is the one). */
export interface FleetObserver {
  /** The fleet's facts for the pool now; also feeds the fleet's own state (breakers, anomalies, scrapes). */
  observe(key: string, pool: PoolObject, spec: ResolvedPoolSpec, resolution: Resolution): FleetFacts;
  /** The pool is gone: drop what was kept for it. */
  forget(key: string): void;
}

/**
 * Turns a pool's view into the routing some data plane receives (router-publisher.ts: the routers'
 * control stream). Level-based: publishing the same view again changes nothing; undefined: the pool
 * is gone, remove it.
 */
export interface RoutingPublisher {
  publish(key: string, view: PoolView | undefined): void;
}

/** Predictive needs a model; without one the pool runs its fallback (and status says so). */
export function policyInForce(spec: ResolvedPoolSpec, modelReady: boolean): PolicyName {
  const b = spec.balancing;
  return b.policy === 'Predictive' && !modelReady ? b.fallbackPolicy : b.policy;
}
