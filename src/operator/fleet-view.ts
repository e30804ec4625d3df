import type { ResolvedPoolSpec } from '../api/resolve.js';
import type { FleetTelemetry } from '../telemetry/fleet.js';
import type { ResourceSource } from '../telemetry/resources.js';
import type { AnomalyObserver } from './anomaly-observer.js';
import type { PoolObject } from './context.js';
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
    };
  }

  forget(key: string): void {
    this.d.resources.untrack(key);
    this.d.anomalies.forget(key);
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
