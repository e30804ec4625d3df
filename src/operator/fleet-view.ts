import type { BackendPool, BreakerStateName } from '../api/backendpool.js';
import type { WireEndpoint, WirePool } from '../control/messages.js';
import type { RoutingState } from '../control/routing-state.js';
import { FleetBreakers, FleetTelemetry, type FleetBreakerTransition } from '../telemetry/fleet.js';
import type { Clock } from '../util/clock.js';
import { AnomalyMonitor, type AnomalyTransition, type PoolSample } from '../anomaly/monitor.js';
import type { ResourceSource, TelemetrySettings } from '../telemetry/resources.js';
import { parseDuration } from '../util/duration.js';
import type { Resolution } from './endpoints.js';
import type { EndpointFigures } from './pool-status.js';
import type { PoolFiguresSource } from './pool-reconciler.js';

/** Predictions for a pool's endpoints, from the latency model (absent until one is loaded). */
export interface Predictor {
  readonly ready: boolean;
  predict(
    pool: string,
    address: string,
    view: ReturnType<FleetTelemetry['view']>,
    baselineMs?: number,
  ): { latencyMs: number; p90Ms?: number } | undefined;
}

/**
 * What the operator knows of each pool beyond the API server: the fleet's telemetry, fleet-wide
 * breakers and predictions. It feeds status (as a PoolFiguresSource) and publishes each pool's
 * routing entry to the RoutingState that the control server pushes to routers.
 */
export class FleetView implements PoolFiguresSource {
  readonly telemetry: FleetTelemetry;
  readonly breakers: FleetBreakers;
  private readonly cache = new Map<string, Map<string, EndpointFigures>>();
  predictor?: Predictor;
  /** CPU and memory from the metrics API and backends' Prometheus endpoints. */
  resources?: ResourceSource;
  /** Robust anomaly detection on each pool's p99, error rate, model error and hit ratio (DESIGN.md §8). */
  readonly anomalyMonitor = new AnomalyMonitor();
  private readonly lastObserved = new Map<string, number>();
  /** Called for each anomaly raised or cleared. */
  onAnomaly?: (pool: BackendPool, t: AnomalyTransition) => void;
  /** The share of a pool's cacheable lookups its cache answered, recently (CacheView); undefined: no cache. */
  hitRatio?: (pool: string) => number | undefined;
  /** The cache config and flush token of the CacheTier serving a pool (tier-reconciler.ts). */
  cacheFor?: (pool: string) => { cacheJson: string; flushToken: string } | undefined;

  constructor(
    readonly routing: RoutingState,
    private readonly clock: Clock,
    private readonly routerCount: (pool: string) => number,
    private readonly onBreaker: (pool: BackendPool, t: FleetBreakerTransition) => void,
  ) {
    this.telemetry = new FleetTelemetry(clock);
    this.breakers = new FleetBreakers(this.telemetry, clock);
  }

  figures(namespace: string, name: string): ReadonlyMap<string, EndpointFigures> | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  routers(namespace: string, name: string): number {
    return this.routerCount(`${namespace}/${name}`);
  }

  policyInForce(namespace: string, name: string): string | undefined {
    return this.routing.get(`${namespace}/${name}`)?.policy;
  }

  /** Recomputes a pool's figures and routing entry from the world; undefined pool = removed. */
  publish(key: string, pool: BackendPool | undefined, resolution: Resolution | undefined): void {
    if (!pool || !resolution?.ok) {
      this.cache.delete(key);
      this.resources?.untrack(key);
      if (!pool) {
        this.anomalyMonitor.forget(key);
        this.lastObserved.delete(key);
      }
      this.routing.update(key, pool ? this.wirePool(key, pool, []) : undefined);
      return;
    }
    const ns = pool.metadata.namespace ?? '';
    this.resources?.track(
      key,
      resolution.endpoints.map((e) => ({
        address: e.address,
        namespace: ns,
        ...(e.pod ? { pod: e.pod } : {}),
      })),
      telemetrySettings(pool),
    );
    const res = this.resources?.figures(key);
    const cb = pool.spec.circuitBreaker ?? {};
    const cfg = {
      failureThreshold: cb.failureThreshold ?? 5,
      recoveryTimeoutMs: parseDuration(cb.recoveryTimeout ?? '30s'),
    };
    const figures = new Map<string, EndpointFigures>();
    const wire: WireEndpoint[] = [];
    const predictions = new Map<string, { latencyMs: number; p90Ms?: number }>();
    // The pool's typical latency: the median of its endpoints' p50s, the model's method-cost input.
    // Each endpoint's fleet view is read once here: view() merges every router's histograms.
    const views = new Map(resolution.endpoints.map((e) => [e.address, this.telemetry.view(key, e.address)]));
    const p50s = [...views.values()]
      .map((v) => v?.p50Ms)
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b);
    const baselineMs = p50s.length ? p50s[Math.floor(p50s.length / 2)] : undefined;
    for (const e of resolution.endpoints) {
      const t = this.breakers.evaluate(key, e.address, cfg);
      if (t) this.onBreaker(pool, t);
      // A fleet breaker that just closed forgot the endpoint's old figures: read them again.
      if (t?.to === 'Closed') views.set(e.address, this.telemetry.view(key, e.address));
      const v = views.get(e.address);
      const p = this.predictor?.ready ? this.predictor.predict(key, e.address, v, baselineMs) : undefined;
      if (p) predictions.set(e.address, p);
      const forceOpen = this.breakers.isOpen(key, e.address);
      const breaker: BreakerStateName =
        forceOpen || (v && v.openBreakers * 2 > v.routers) ? 'Open' : 'Closed';
      const f: EndpointFigures = { breaker };
      if (v) {
        f.inflight = v.inflight;
        if (v.cpu !== undefined) f.cpu = round(v.cpu, 3);
        if (v.p50Ms !== undefined) f.latencyP50Ms = round(v.p50Ms, 2);
        if (v.p99Ms !== undefined) f.latencyP99Ms = round(v.p99Ms, 2);
        if (v.concurrencyLimit !== undefined) f.concurrencyLimit = v.concurrencyLimit;
      }
      if (p) f.predictedLatencyMs = round(p.latencyMs, 2);
      // Cores from the metrics API or Prometheus when known; else ORCA's utilisation (0..1).
      const r = res?.get(e.address);
      if (r?.cpuCores !== undefined) f.cpu = round(r.cpuCores, 3);
      if (r?.memoryBytes !== undefined) f.memoryBytes = Math.round(r.memoryBytes);
      figures.set(e.address, f);
      wire.push({
        address: e.address,
        pod: e.pod ?? '',
        ready: e.ready,
        forceOpen,
        figuresAgeMs: v ? Math.round(v.ageMs) : 0,
        ...(v ? { errorRate: round(v.errorRate, 4) } : {}),
        ...(v?.cpu !== undefined ? { cpu: v.cpu } : {}),
        ...(v?.memory !== undefined ? { memory: v.memory } : {}),
        ...(p ? { predictedLatencyMs: round(p.latencyMs, 3) } : {}),
        ...(p?.p90Ms !== undefined ? { predictedP90Ms: round(p.p90Ms, 3) } : {}),
      });
    }
    // Weights: the share each endpoint should get, inversely proportional to its predicted latency.
    if (predictions.size > 0) {
      const inv = (a: string) => 1 / Math.max(0.01, predictions.get(a)?.latencyMs ?? Infinity);
      const max = Math.max(...wire.map((w) => inv(w.address)));
      for (const w of wire) {
        const weight = round(inv(w.address) / max, 3);
        w.weight = weight;
        (figures.get(w.address) as EndpointFigures).weight = weight;
      }
    }
    this.cache.set(key, figures);
    this.observeAnomalies(key, pool, figures, views);
    this.routing.update(key, this.wirePool(key, pool, wire));
  }

  /** Feeds the anomaly monitor once per telemetry interval with the pool's figures. */
  private observeAnomalies(
    key: string,
    pool: BackendPool,
    figures: ReadonlyMap<string, EndpointFigures>,
    views: ReadonlyMap<string, ReturnType<FleetTelemetry['view']>>,
  ): void {
    const now = this.clock.now();
    const interval = parseDuration(pool.spec.telemetry?.interval ?? '10s');
    if (now - (this.lastObserved.get(key) ?? -Infinity) < interval) return;
    let calls = 0;
    let failures = 0;
    const p99s: number[] = [];
    const endpoints = [];
    for (const [address, f] of figures) {
      const v = views.get(address);
      if (v) {
        calls += v.calls;
        failures += v.failures;
      }
      if (f.latencyP99Ms !== undefined) p99s.push(f.latencyP99Ms);
      endpoints.push({
        name: address,
        ...(f.latencyP99Ms !== undefined ? { p99Ms: f.latencyP99Ms } : {}),
        ...(v ? { errorRate: v.errorRate } : {}),
        ...(f.breaker ? { breaker: f.breaker } : {}),
      });
    }
    if (calls === 0) return; // no traffic, no verdict
    this.lastObserved.set(key, now);
    const sample: PoolSample = { errorRate: failures / calls };
    if (p99s.length) sample.p99Ms = Math.max(...p99s);
    const modelError = poolModelError(figures, views);
    if (modelError !== undefined) sample.modelError = modelError;
    const hitRatio = this.hitRatio?.(key);
    if (hitRatio !== undefined) sample.hitRatio = hitRatio;
    const openBreakers = [...figures.values()].filter((f) => f.breaker === 'Open').length;
    for (const t of this.anomalyMonitor.observe(key, sample, { endpoints, openBreakers }))
      this.onAnomaly?.(pool, t);
  }

  private wirePool(key: string, pool: BackendPool, endpoints: WireEndpoint[]): WirePool {
    const b = pool.spec.balancing ?? {};
    const wanted = b.policy ?? 'Predictive';
    // Predictive needs a model; without one the pool runs its fallback and says so.
    const policy =
      wanted === 'Predictive' && !this.predictor?.ready ? (b.fallbackPolicy ?? 'PeakEwma') : wanted;
    const cache = this.cacheFor?.(key);
    return {
      name: key,
      specJson: JSON.stringify(pool.spec),
      endpoints,
      policy,
      ...(cache ? { cacheJson: cache.cacheJson, cacheFlushToken: cache.flushToken } : {}),
    };
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

function telemetrySettings(pool: BackendPool): TelemetrySettings {
  const t = pool.spec.telemetry ?? {};
  const prom = t.prometheus;
  return {
    intervalMs: parseDuration(t.interval ?? '10s'),
    metricsApi: t.metricsApi ?? true,
    ...(prom
      ? {
          prometheus: {
            port: prom.port,
            path: prom.path ?? '/metrics',
            cpuSeries: prom.cpuSeries ?? 'process_cpu_seconds_total',
            memorySeries: prom.memorySeries ?? 'process_resident_memory_bytes',
          },
        }
      : {}),
  };
}

/**
 * How far the model's predictions are from what the fleet observes in a pool: the call-weighted mean,
 * over endpoints with both figures, of |ln(predicted / observed median latency)| (the unit of the
 * model's training loss and of sibyl_model_holdout_error, so 0.1 reads as "about 10% off"). Undefined
 * when no endpoint has both. A rise is ModelDrift: the backends changed in a way the model has not seen.
 */
export function poolModelError(
  figures: ReadonlyMap<string, EndpointFigures>,
  views: ReadonlyMap<string, { calls: number } | undefined>,
): number | undefined {
  let sum = 0;
  let weight = 0;
  for (const [address, f] of figures) {
    const calls = views.get(address)?.calls ?? 0;
    const pred = f.predictedLatencyMs;
    const seen = f.latencyP50Ms;
    if (calls === 0 || pred === undefined || seen === undefined || !(pred > 0) || !(seen > 0)) continue;
    sum += calls * Math.abs(Math.log(pred / seen));
    weight += calls;
  }
  return weight > 0 ? sum / weight : undefined;
}
