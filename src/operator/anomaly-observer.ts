import type {
  ActiveAnomaly,
  AnomalyMonitor,
  AnomalyTransition,
  EndpointSnapshot,
  PoolSample,
} from '../anomaly/monitor.js';
import type { EndpointView } from '../telemetry/fleet.js';
import type { Clock } from '../util/clock.js';
import type { PoolObject } from './context.js';
import type { EndpointFigures } from './pool-view.js';

export interface AnomalyObserverDeps {
  /** Robust anomaly detection on each pool's p99, error rate, model error and hit ratio. */
  monitor: AnomalyMonitor;
  clock: Clock;
  /** The share of a pool's cacheable lookups its cache answered recently; undefined: no cache. */
  hitRatio: (pool: string) => number | undefined;
  /** Each anomaly raised or cleared. */
  onTransition: (pool: PoolObject, t: AnomalyTransition) => void;
}

/**
 * Feeds each pool's figures to the anomaly monitor, once per telemetry interval and only while the
 * pool has traffic (no calls, no verdict), and reports what the monitor raises or clears.
 */
export class AnomalyObserver {
  private readonly lastObserved = new Map<string, number>();

  constructor(private readonly d: AnomalyObserverDeps) {}

  observe(
    key: string,
    pool: PoolObject,
    intervalMs: number,
    figures: ReadonlyMap<string, EndpointFigures>,
    views: ReadonlyMap<string, EndpointView | undefined>,
  ): void {
    const now = this.d.clock.now();
    if (now - (this.lastObserved.get(key) ?? -Infinity) < intervalMs) return;
    let calls = 0;
    let failures = 0;
    const p99s: number[] = [];
    const endpoints: EndpointSnapshot[] = [];
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
    if (calls === 0) return;
    this.lastObserved.set(key, now);
    const sample: PoolSample = { errorRate: failures / calls };
    if (p99s.length) sample.p99Ms = Math.max(...p99s);
    const modelError = poolModelError(figures, views);
    if (modelError !== undefined) sample.modelError = modelError;
    const hitRatio = this.d.hitRatio(key);
    if (hitRatio !== undefined) sample.hitRatio = hitRatio;
    const openBreakers = [...figures.values()].filter((f) => f.breaker === 'Open').length;
    for (const t of this.d.monitor.observe(key, sample, { endpoints, openBreakers }))
      this.d.onTransition(pool, t);
  }

  /** The anomalies active on a pool now (the Degraded condition). */
  active(key: string): ActiveAnomaly[] {
    return this.d.monitor.activeAnomalies(key);
  }

  /** The pool is gone. */
  forget(key: string): void {
    this.d.monitor.forget(key);
    this.lastObserved.delete(key);
  }
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
