import { SibylError } from '../util/errors.js';

/**
 * A robust streaming anomaly detector for one series (one pool's p99 latency, error rate, model error or
 * cache hit ratio). Pure: no clock, no randomness, no I/O; feed it points, read its verdicts.
 *
 * Baseline: the median and the median absolute deviation (MAD) of the last `window` accepted points.
 * Score: the modified z-score of Iglewicz & Hoaglin ("How to Detect and Handle Outliers", ASQC 1993),
 *
 *     z = 0.6745 · (x − median) / MAD
 *
 * where 0.6745 = Φ⁻¹(0.75) makes MAD a consistent estimator of σ for normal data, and |z| > 3.5 is their
 * recommended outlier cut. The median and MAD have a 50% breakdown point, so a few spikes inside the window
 * do not move the baseline the way they would move a mean and a standard deviation.
 *
 * Four guards keep it from flapping or going deaf:
 * - warm-up: no verdict until `minPoints` points are in the window;
 * - a MAD floor, max(MAD, relativeMadFloor·|median|, absoluteMadFloor): a flat series (MAD ≈ 0) would
 *   otherwise make every wiggle infinitely surprising;
 * - hysteresis: raise after `raiseAfter` consecutive points scoring above `raiseZ` in the anomalous
 *   direction; clear after `clearAfter` consecutive points scoring below the lower `clearZ`;
 * - a frozen baseline: points suspected (a streak above `raiseZ`) or confirmed anomalous never enter the
 *   window, so an anomaly that lasts cannot become the new normal. A suspect streak that breaks before
 *   `raiseAfter` is committed to the window after all (it was noise); the recovery points that clear an
 *   anomaly are committed when it clears.
 */

/** Which way is bad: latency and errors are anomalous upward, a hit ratio downward. */
export type Direction = 'up' | 'down';

export type DetectorState = 'warming' | 'normal' | 'anomalous';

export interface DetectorOptions {
  /** Which way is bad. */
  readonly direction: Direction;
  /** Sliding window length N (points). Default 120 (an hour of 30 s scrapes). */
  readonly window?: number;
  /** No verdict until this many points are in the window. Default 30; at most `window`. */
  readonly minPoints?: number;
  /** Raise threshold on the directed robust z. Default 3.5 (Iglewicz & Hoaglin). */
  readonly raiseZ?: number;
  /** Clear threshold on the directed robust z; below `raiseZ`. Default 2. */
  readonly clearZ?: number;
  /** k: consecutive points above `raiseZ` to raise. Default 3. */
  readonly raiseAfter?: number;
  /** m: consecutive points below `clearZ` to clear. Default 5. */
  readonly clearAfter?: number;
  /** MAD floor as a fraction of |median|. Default 0.05. */
  readonly relativeMadFloor?: number;
  /** MAD floor in the series' own unit. Default 0 (but then a zero median with zero MAD scores ±∞). */
  readonly absoluteMadFloor?: number;
}

export type ResolvedDetectorOptions = Required<DetectorOptions>;

export interface Baseline {
  readonly median: number;
  /** The raw MAD of the window. */
  readonly mad: number;
  /** The MAD after the floor: the scale the z-score divides by. */
  readonly scale: number;
  /** Points in the window. */
  readonly points: number;
}

export interface Verdict {
  /** The state after this point. */
  readonly state: DetectorState;
  /** Set on the point that changed the state between normal and anomalous. */
  readonly transition?: 'raised' | 'cleared';
  readonly value: number;
  /** The baseline the point was scored against; undefined while warming. */
  readonly baseline?: Baseline;
  /** Signed robust z (positive above the median); undefined while warming. */
  readonly z?: number;
  /** Consecutive points so far in the current raise streak (normal) or clear streak (anomalous). */
  readonly streak: number;
  /** Points observed since the anomaly was raised (0 when not anomalous). */
  readonly anomalyPoints: number;
}

/** Iglewicz & Hoaglin's constant: Φ⁻¹(0.75), so that MAD/0.6745 estimates σ for normal data. */
export const MAD_CONSISTENCY = 0.6745;

function resolveDetectorOptions(o: DetectorOptions): ResolvedDetectorOptions {
  const r: ResolvedDetectorOptions = {
    direction: o.direction,
    window: o.window ?? 120,
    minPoints: o.minPoints ?? Math.min(30, o.window ?? 120),
    raiseZ: o.raiseZ ?? 3.5,
    clearZ: o.clearZ ?? 2,
    raiseAfter: o.raiseAfter ?? 3,
    clearAfter: o.clearAfter ?? 5,
    relativeMadFloor: o.relativeMadFloor ?? 0.05,
    absoluteMadFloor: o.absoluteMadFloor ?? 0,
  };
  const bad = (why: string): never => {
    throw new SibylError('ERR_CONFIG_INVALID', `anomaly detector: ${why}`);
  };
  if (r.direction !== 'up' && r.direction !== 'down') bad(`direction must be 'up' or 'down'`);
  if (!Number.isInteger(r.window) || r.window < 3) bad(`window must be an integer ≥ 3, got ${r.window}`);
  if (!Number.isInteger(r.minPoints) || r.minPoints < 3 || r.minPoints > r.window) {
    bad(`minPoints must be an integer in [3, window=${r.window}], got ${r.minPoints}`);
  }
  if (!(r.raiseZ > 0) || !Number.isFinite(r.raiseZ)) bad(`raiseZ must be a positive number, got ${r.raiseZ}`);
  if (!(r.clearZ < r.raiseZ) || !Number.isFinite(r.clearZ)) {
    bad(`clearZ must be below raiseZ=${r.raiseZ}, got ${r.clearZ}`);
  }
  for (const k of ['raiseAfter', 'clearAfter'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) bad(`${k} must be an integer ≥ 1, got ${r[k]}`);
  }
  for (const k of ['relativeMadFloor', 'absoluteMadFloor'] as const) {
    if (!(r[k] >= 0) || !Number.isFinite(r[k])) bad(`${k} must be a finite number ≥ 0, got ${r[k]}`);
  }
  return r;
}

/** Median of an ascending array (non-empty). */
function medianOfSorted(s: readonly number[]): number {
  const n = s.length;
  const h = n >> 1;
  return n % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Index of the first element ≥ x in an ascending array. */
function lowerBound(s: readonly number[], x: number): number {
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class RobustDetector {
  readonly options: ResolvedDetectorOptions;
  /** The window in arrival order (a ring would save the shift; N is small, so clarity wins). */
  private readonly fifo: number[] = [];
  /** The same points, ascending, kept by binary insertion so the median is O(1) and an update O(N). */
  private readonly sorted: number[] = [];
  private cached: Baseline | undefined;
  private current: DetectorState = 'warming';
  private streak = 0;
  /** Points held out of the window: a suspect raise streak, or a recovery streak while anomalous. */
  private held: number[] = [];
  private sinceRaise = 0;

  constructor(options: DetectorOptions) {
    this.options = resolveDetectorOptions(options);
  }

  get state(): DetectorState {
    return this.current;
  }

  /** Points observed since the current anomaly was raised (0 when not anomalous). */
  get anomalyPoints(): number {
    return this.sinceRaise;
  }

  /** The current baseline, or undefined before `minPoints` points. */
  baseline(): Baseline | undefined {
    if (this.fifo.length < this.options.minPoints) return undefined;
    if (this.cached) return this.cached;
    const median = medianOfSorted(this.sorted);
    const dev = this.sorted.map((v) => Math.abs(v - median)).sort((a, b) => a - b);
    const mad = medianOfSorted(dev);
    const { relativeMadFloor, absoluteMadFloor } = this.options;
    const scale = Math.max(mad, relativeMadFloor * Math.abs(median), absoluteMadFloor);
    this.cached = { median, mad, scale, points: this.fifo.length };
    return this.cached;
  }

  /** Signed robust z of x against a baseline; ±∞ when the scale is 0 and x differs from the median. */
  static robustZ(x: number, b: Pick<Baseline, 'median' | 'scale'>): number {
    const d = x - b.median;
    if (d === 0) return 0;
    return b.scale > 0 ? (MAD_CONSISTENCY * d) / b.scale : d > 0 ? Infinity : -Infinity;
  }

  /**
   * Scores one point and advances the state machine. Non-finite points (no traffic, a failed scrape) are
   * ignored: they change nothing and return the current state without a transition.
   */
  observe(x: number): Verdict {
    if (!Number.isFinite(x)) return this.verdict(x, undefined, undefined);
    const b = this.baseline();
    if (!b) {
      this.push(x);
      if (this.fifo.length >= this.options.minPoints) this.current = 'normal';
      return this.verdict(x, undefined, undefined);
    }
    const z = RobustDetector.robustZ(x, b);
    const directed = this.options.direction === 'up' ? z : -z;
    const o = this.options;

    if (this.current === 'normal') {
      if (directed > o.raiseZ) {
        this.streak++;
        this.held.push(x);
        if (this.streak >= o.raiseAfter) {
          this.current = 'anomalous';
          this.streak = 0;
          this.held = [];
          this.sinceRaise = 1;
          return this.verdict(x, b, z, 'raised');
        }
      } else {
        // The suspect streak broke: it was noise, so its points belong to the baseline after all.
        for (const h of this.held) this.push(h);
        this.held = [];
        this.streak = 0;
        this.push(x);
      }
      return this.verdict(x, b, z);
    }

    // Anomalous: the baseline is frozen; only a run of recovered points ends it.
    this.sinceRaise++;
    if (directed < o.clearZ) {
      this.streak++;
      this.held.push(x);
      if (this.streak >= o.clearAfter) {
        for (const h of this.held) this.push(h);
        this.held = [];
        this.streak = 0;
        this.current = 'normal';
        const v = this.verdict(x, b, z, 'cleared');
        this.sinceRaise = 0;
        return v;
      }
    } else {
      this.streak = 0;
      this.held = [];
    }
    return this.verdict(x, b, z);
  }

  /** Forgets everything: back to warming with an empty window. */
  reset(): void {
    this.fifo.length = 0;
    this.sorted.length = 0;
    this.cached = undefined;
    this.current = 'warming';
    this.streak = 0;
    this.held = [];
    this.sinceRaise = 0;
  }

  private push(x: number): void {
    this.fifo.push(x);
    this.sorted.splice(lowerBound(this.sorted, x), 0, x);
    if (this.fifo.length > this.options.window) {
      const old = this.fifo.shift()!;
      this.sorted.splice(lowerBound(this.sorted, old), 1);
    }
    this.cached = undefined;
  }

  private verdict(
    value: number,
    baseline: Baseline | undefined,
    z: number | undefined,
    transition?: 'raised' | 'cleared',
  ): Verdict {
    return {
      state: this.current,
      value,
      streak: this.streak,
      anomalyPoints: this.sinceRaise,
      ...(transition ? { transition } : {}),
      ...(baseline ? { baseline } : {}),
      ...(z !== undefined ? { z } : {}),
    };
  }
}
