import type { BreakerStateName } from '../api/backendpool.js';
import { RobustDetector, type DetectorOptions, type Verdict } from './detector.js';

/**
 * Per-pool anomaly monitoring (docs/architecture.md, "Observability"): one RobustDetector per metric per pool, and a message for
 * each transition that gives the figures and a recommendation built from what the pool's endpoints look
 * like at that moment. Pure: the caller turns transitions into events, conditions and metrics.
 */

export type AnomalyMetric = 'p99Ms' | 'errorRate' | 'modelError' | 'hitRatio';
export type AnomalyReason = 'LatencyAnomaly' | 'ErrorRateAnomaly' | 'ModelDrift' | 'CacheHitDrop';

const ANOMALY_METRICS: readonly AnomalyMetric[] = ['p99Ms', 'errorRate', 'modelError', 'hitRatio'];

const REASON_OF: Readonly<Record<AnomalyMetric, AnomalyReason>> = {
  p99Ms: 'LatencyAnomaly',
  errorRate: 'ErrorRateAnomaly',
  modelError: 'ModelDrift',
  hitRatio: 'CacheHitDrop',
};

/** One observation of a pool; a metric left out (no traffic, no cache) is not scored this time. */
export type PoolSample = Partial<Record<AnomalyMetric, number>>;

export interface EndpointSnapshot {
  readonly name: string;
  readonly p99Ms?: number;
  readonly errorRate?: number;
  readonly breaker?: BreakerStateName;
}

export interface PoolContext {
  readonly endpoints: readonly EndpointSnapshot[];
  readonly openBreakers: number;
  readonly inflightPerEndpoint?: number;
}

export interface AnomalyTransition {
  readonly pool: string;
  readonly metric: AnomalyMetric;
  readonly state: 'raised' | 'cleared';
  readonly reason: AnomalyReason;
  readonly message: string;
  readonly value: number;
  readonly median: number;
  readonly z: number;
}

export interface ActiveAnomaly {
  readonly metric: AnomalyMetric;
  readonly reason: AnomalyReason;
  /** The message of the raise. */
  readonly message: string;
  /** Points observed since the raise. */
  readonly points: number;
}

export interface MonitorOptions {
  /** Per-metric overrides of the detector options (direction included, though the defaults are right). */
  readonly metrics?: Partial<Record<AnomalyMetric, Partial<DetectorOptions>>>;
  /**
   * An endpoint stands out when its figure is at least `outlierFactor` × the median of its peers and
   * exceeds that median by the metric's `outlierGap` (ms for p99, a fraction for error rate). Defaults 2.
   */
  readonly outlierFactor?: number;
  /** At most this many endpoints are named. Default 3. */
  readonly maxNamed?: number;
  /** Scale out when at least this fraction of endpoints exceed `slowFactor` × the pool's baseline p99. */
  readonly slowFraction?: number;
  /** Default 1.5. */
  readonly slowFactor?: number;
}

/**
 * Defaults per metric. The MAD floors are the figures a flat series must move by before it scores at all:
 * latency 5% of its median (≥ 1 ms); error rate 0.25 percentage points, so a pool at 0% errors raises
 * near 1.3% (3.5 · 0.0025 / 0.6745); model error (mean |ln predicted/observed|) 5% of its median, at least
 * 0.05: observed medians come from histograms whose buckets are ~1.5× apart, so one moves by up to ~0.2
 * in ln from quantisation alone, and the model is flagged only when it is off by ~30% more than usual;
 * hit ratio 2% of its median (≥ 0.01).
 */
const METRIC_DEFAULTS: Readonly<Record<AnomalyMetric, DetectorOptions>> = {
  p99Ms: { direction: 'up', relativeMadFloor: 0.05, absoluteMadFloor: 1 },
  errorRate: { direction: 'up', relativeMadFloor: 0.1, absoluteMadFloor: 0.0025 },
  modelError: { direction: 'up', relativeMadFloor: 0.05, absoluteMadFloor: 0.05 },
  hitRatio: { direction: 'down', relativeMadFloor: 0.02, absoluteMadFloor: 0.01 },
};

const LABEL: Record<AnomalyMetric, string> = {
  p99Ms: 'p99 latency',
  errorRate: 'error rate',
  modelError: 'model error',
  hitRatio: 'cache hit ratio',
};

function fmt(metric: AnomalyMetric, v: number): string {
  if (metric === 'p99Ms') return `${v.toFixed(1)}ms`;
  if (metric === 'errorRate' || metric === 'hitRatio') return `${(v * 100).toFixed(2)}%`;
  return v.toPrecision(3);
}

function fmtZ(z: number): string {
  return Number.isFinite(z) ? z.toFixed(1) : z > 0 ? '+inf' : '-inf';
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

interface Outlier {
  readonly name: string;
  readonly value: number;
  readonly peers: number;
}

interface PoolState {
  readonly detectors: Map<AnomalyMetric, RobustDetector>;
  readonly active: Map<AnomalyMetric, string>;
}

export class AnomalyMonitor {
  private readonly pools = new Map<string, PoolState>();
  private readonly outlierFactor: number;
  private readonly maxNamed: number;
  private readonly slowFraction: number;
  private readonly slowFactor: number;

  constructor(private readonly options: MonitorOptions = {}) {
    this.outlierFactor = options.outlierFactor ?? 2;
    this.maxNamed = options.maxNamed ?? 3;
    this.slowFraction = options.slowFraction ?? 0.5;
    this.slowFactor = options.slowFactor ?? 1.5;
    // Build one of each now so bad options fail at construction, not at the first sample.
    for (const m of ANOMALY_METRICS) this.newDetector(m);
  }

  /** Scores one sample of a pool; returns the raises and clears it caused (usually none). */
  observe(
    pool: string,
    sample: PoolSample,
    context: PoolContext = { endpoints: [], openBreakers: 0 },
  ): AnomalyTransition[] {
    const st = this.poolState(pool);
    const out: AnomalyTransition[] = [];
    for (const metric of ANOMALY_METRICS) {
      const x = sample[metric];
      if (x === undefined || !Number.isFinite(x)) continue;
      let d = st.detectors.get(metric);
      if (!d) {
        d = this.newDetector(metric);
        st.detectors.set(metric, d);
      }
      const v = d.observe(x);
      if (!v.transition || !v.baseline || v.z === undefined) continue;
      const message =
        v.transition === 'raised'
          ? this.raiseMessage(pool, metric, v, d, context)
          : this.clearMessage(pool, metric, v);
      if (v.transition === 'raised') st.active.set(metric, message);
      else st.active.delete(metric);
      out.push({
        pool,
        metric,
        state: v.transition,
        reason: REASON_OF[metric],
        message,
        value: x,
        median: v.baseline.median,
        z: v.z,
      });
    }
    return out;
  }

  /** The anomalies now active on a pool, for a Degraded condition (empty: not degraded). */
  activeAnomalies(pool: string): ActiveAnomaly[] {
    const st = this.pools.get(pool);
    if (!st) return [];
    return [...st.active].map(([metric, message]) => ({
      metric,
      reason: REASON_OF[metric],
      message,
      points: st.detectors.get(metric)?.anomalyPoints ?? 0,
    }));
  }

  /** Drops a pool's detectors (the pool was deleted). */
  forget(pool: string): void {
    this.pools.delete(pool);
  }

  private poolState(pool: string): PoolState {
    let st = this.pools.get(pool);
    if (!st) {
      st = { detectors: new Map(), active: new Map() };
      this.pools.set(pool, st);
    }
    return st;
  }

  private newDetector(metric: AnomalyMetric): RobustDetector {
    return new RobustDetector({ ...METRIC_DEFAULTS[metric], ...this.options.metrics?.[metric] });
  }

  private figures(metric: AnomalyMetric, v: Verdict): string {
    const b = v.baseline!;
    return (
      `${LABEL[metric]} ${fmt(metric, v.value)} vs baseline median ${fmt(metric, b.median)} ` +
      `(robust z ${fmtZ(v.z!)}, MAD ${fmt(metric, b.mad)}, ${b.points} points)`
    );
  }

  private raiseMessage(
    pool: string,
    metric: AnomalyMetric,
    v: Verdict,
    d: RobustDetector,
    ctx: PoolContext,
  ): string {
    const o = d.options;
    const head =
      `${REASON_OF[metric]} on pool ${pool}: ${this.figures(metric, v)}, ` +
      `beyond z ${o.raiseZ} for ${o.raiseAfter} consecutive points.`;
    return [head, ...this.recommend(metric, v, ctx)].join(' ');
  }

  private clearMessage(pool: string, metric: AnomalyMetric, v: Verdict): string {
    return `${REASON_OF[metric]} cleared on pool ${pool}: ${this.figures(metric, v)}, after ${v.anomalyPoints} points.`;
  }

  /** Endpoints whose figure stands out from their peers' median, worst first. */
  private outliers(ctx: PoolContext, key: 'p99Ms' | 'errorRate', gap: number): Outlier[] {
    const have = ctx.endpoints.filter(
      (e): e is EndpointSnapshot & Record<typeof key, number> =>
        e[key] !== undefined && Number.isFinite(e[key]),
    );
    if (have.length === 0) return [];
    const peers = median(have.map((e) => e[key]));
    return have
      .filter((e) => e[key] >= this.outlierFactor * peers && e[key] - peers >= gap)
      .sort((a, b) => b[key] - a[key])
      .slice(0, this.maxNamed)
      .map((e) => ({ name: e.name, value: e[key], peers }));
  }

  private recommend(metric: AnomalyMetric, v: Verdict, ctx: PoolContext): string[] {
    const out: string[] = [];
    const n = ctx.endpoints.length;
    const lat = this.outliers(ctx, 'p99Ms', 5);
    const err = this.outliers(ctx, 'errorRate', 0.01);
    const named = (list: Outlier[], m: 'p99Ms' | 'errorRate') =>
      list.map((o) => `${o.name} (${fmt(m, o.value)} vs peers ${fmt(m, o.peers)})`).join(', ');

    const focus = metric === 'errorRate' ? err : metric === 'hitRatio' ? [] : lat;
    const focusMetric = metric === 'errorRate' ? 'errorRate' : 'p99Ms';
    if (focus.length > 0) {
      out.push(
        `Endpoints standing out by ${LABEL[focusMetric]}: ${named(focus, focusMetric)}; ` +
          `consider draining or ejecting them.`,
      );
    } else if (metric !== 'hitRatio') {
      const other = focusMetric === 'p99Ms' ? err : lat;
      const otherMetric = focusMetric === 'p99Ms' ? 'errorRate' : 'p99Ms';
      if (other.length > 0) {
        out.push(`Endpoints standing out by ${LABEL[otherMetric]}: ${named(other, otherMetric)}.`);
      }
    }

    const open = ctx.endpoints.filter((e) => e.breaker === 'Open').map((e) => e.name);
    if (ctx.openBreakers > 0) {
      out.push(
        `${ctx.openBreakers} circuit breaker(s) open${open.length > 0 ? `: ${open.join(', ')}` : ''}.`,
      );
    } else {
      out.push('No circuit breaker is open.');
    }

    // Most endpoints slow together points at capacity, not at one bad backend.
    if (metric === 'p99Ms' && n > 0) {
      const bar = this.slowFactor * v.baseline!.median;
      const slow = ctx.endpoints.filter((e) => e.p99Ms !== undefined && e.p99Ms >= bar).length;
      const inflight =
        ctx.inflightPerEndpoint !== undefined
          ? ` (${ctx.inflightPerEndpoint.toFixed(1)} calls in flight per endpoint)`
          : '';
      if (slow / n >= this.slowFraction && lat.length === 0) {
        out.push(`${slow} of ${n} endpoints are slow together${inflight}: scale out the pool.`);
      } else {
        out.push(`${slow} of ${n} endpoints are slow${inflight}: scaling out is unlikely to help.`);
      }
    }
    if (metric === 'modelError') {
      out.push('Predictions have drifted from observed latency: check the model and retrain if it persists.');
    }
    if (metric === 'hitRatio') {
      out.push('Check the cache tiers (Redis reachable, evictions, key churn after a deploy).');
    }
    return out;
  }
}
