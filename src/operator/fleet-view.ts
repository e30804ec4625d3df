import { PREDICTED_TIMEOUT_QUANTILE } from '../api/predicted-timeout.js';
import type { ResolvedPoolSpec } from '../api/resolve.js';
import type { EndpointView, FleetTelemetry } from '../telemetry/fleet.js';
import type { MethodFigures, MethodLatencies } from '../telemetry/method-latency.js';
import type { Clock } from '../util/clock.js';
import type { ResourceSource } from '../telemetry/resources.js';
import type { AnomalyObserver } from './anomaly-observer.js';
import type { PoolObject } from './context.js';
import { methodDeadlines, type MethodDeadline } from './deadlines.js';
import { endpointViews, typicalLatencyMs } from './endpoint-views.js';
import type { Resolution } from './endpoints.js';
import type { Predictor } from './fleet-predictor.js';
import { breakerState, type PoolBreakers } from './pool-breakers.js';
import type { AssessedEndpoint, FleetFacts, FleetObserver } from './pool-view.js';
import { predictEndpoints } from './predictions.js';
import { endpointFigures } from './status-figures.js';
import { endpointWeights } from './weights.js';

export interface FleetViewDeps {
  /** The routers' load reports over the window. */
  telemetry: FleetTelemetry;
  breakers: PoolBreakers;
  /** The latency model. */
  predictor: Predictor;
  /** CPU and memory from the metrics API and backends' Prometheus endpoints. */
  resources: ResourceSource;
  anomalies: AnomalyObserver;
  /** Routers subscribed to a pool. */
  routers: (pool: string) => number;
  /** Each pool's latencies per gRPC method (the backends' own histograms), for per-method deadlines. */
  methods: MethodLatencies;
  clock: Clock;
}

/**
 * What the operator knows of each pool beyond the API server, assessed once per reconcile: the
 * fleet's telemetry per endpoint, fleet-wide breakers, the model's predictions and the weights they
 * give, CPU and memory, status figures, and the anomalies those figures show. The pool's routing
 * entry and its status are both made from the result (pool-reconciler.ts).
 */
export class FleetView implements FleetObserver {
  constructor(private readonly d: FleetViewDeps) {}

  observe(key: string, pool: PoolObject, spec: ResolvedPoolSpec, resolution: Resolution): FleetFacts {
    const { d } = this;
    const endpoints = resolution.ok ? this.assess(key, pool, spec, resolution.endpoints) : [];
    if (!resolution.ok) d.resources.untrack(key);
    const figures = new Map(endpoints.map((a) => [a.endpoint.address, endpointFigures(a)]));
    const deadlines = this.deadlines(key, pool, spec, endpoints);
    if (resolution.ok) {
      const views = new Map(endpoints.map((a) => [a.endpoint.address, a.view]));
      d.anomalies.observe(key, pool, spec.telemetry.intervalMs, figures, views);
    }
    return {
      endpoints,
      figures,
      routers: d.routers(key),
      anomalies: d.anomalies.active(key),
      model: d.predictor.status,
      ...(deadlines ? { deadlines } : {}),
    };
  }

  forget(key: string): void {
    this.d.methods.forget(key);
    this.d.resources.untrack(key);
    this.d.anomalies.forget(key);
  }

  /**
   * With spec.timeout.predicted, each method's per-try deadline (deadlines.ts): the model's p99 for a
   * typical call of the method, the highest over the endpoints calls may land on (ready, breaker not
   * held open), else the p99 the backends observed; held against what status lists now.
   */
  private deadlines(
    key: string,
    pool: PoolObject,
    spec: ResolvedPoolSpec,
    endpoints: readonly AssessedEndpoint[],
  ): MethodDeadline[] | undefined {
    const { d } = this;
    if (!spec.predictedTimeout) return undefined;
    const live = endpoints
      .filter((a) => a.endpoint.ready && !a.forceOpen)
      .map((a) => a.view)
      .filter((v): v is EndpointView => v !== undefined);
    const typical = typicalLatencyMs(live);
    const ask = d.predictor.methodQuantileMs?.bind(d.predictor);
    const modelP99Ms = (m: MethodFigures): number | undefined => {
      if (!ask || !d.predictor.ready || typical === undefined || m.p50Ms === undefined) return undefined;
      const p99s = live
        .map((v) => ask(v, typical, m.p50Ms as number, PREDICTED_TIMEOUT_QUANTILE))
        .filter((x): x is number => x !== undefined);
      return p99s.length ? Math.max(...p99s) : undefined;
    };
    return methodDeadlines({
      spec: spec.predictedTimeout,
      methods: d.methods.figures(key, d.clock.now()),
      modelP99Ms,
      previous: pool.status?.deadlines ?? [],
    });
  }

  private assess(
    key: string,
    pool: PoolObject,
    spec: ResolvedPoolSpec,
    endpoints: Extract<Resolution, { ok: true }>['endpoints'],
  ): AssessedEndpoint[] {
    const { d } = this;
    const ns = pool.metadata.namespace ?? '';
    d.resources.track(
      key,
      endpoints.map((e) => ({ address: e.address, namespace: ns, ...(e.pod ? { pod: e.pod } : {}) })),
      spec.telemetry,
    );
    const resources = d.resources.figures(key);
    const views = endpointViews(d.telemetry, key, endpoints);
    const baselineMs = typicalLatencyMs(views.values());
    const open = d.breakers.evaluate(key, pool, spec.circuitBreaker, endpoints, views);
    const predictions = predictEndpoints(d.predictor, key, endpoints, views, baselineMs);
    const weights = endpointWeights(
      endpoints.map((e) => e.address),
      predictions,
    );
    return endpoints.map((e) => {
      const view = views.get(e.address);
      const prediction = predictions.get(e.address);
      const r = resources.get(e.address);
      const weight = weights.get(e.address);
      const forceOpen = open.has(e.address);
      return {
        endpoint: e,
        ...(view ? { view } : {}),
        forceOpen,
        breaker: breakerState(forceOpen, view),
        ...(prediction ? { prediction } : {}),
        ...(r ? { resources: r } : {}),
        ...(weight !== undefined ? { weight } : {}),
      };
    });
  }
}
