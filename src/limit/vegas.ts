import { registerLimit } from './registry.js';
import { bounds, clamp, type Bounds, type Limit, type LimitDeps, type LimitOptions } from './types.js';
import type { Random } from '../util/clock.js';

/**
 * Vegas, as Netflix's VegasLimit (after TCP Vegas, Brakmo & Peterson 1995). Estimates the queue the
 * limit builds from how far the RTT has risen above the no-load RTT:
 *
 *   queue = ⌈limit · (1 − rttNoLoad / rtt)⌉,   with l = max(1, ⌊log10 limit⌋):
 *   queue ≤ l       → limit + 6l     (no queueing: grow fast)
 *   queue < 3l      → limit + l      (alpha = 3l)
 *   queue > 6l      → limit − l      (beta = 6l)
 *   otherwise       → unchanged;     a drop → limit − l
 *   limit = clamp((1 − smoothing) · limit + smoothing · new, min, max)
 *
 * rttNoLoad is the smallest RTT seen, re-measured ("probed") every jitter · probeMultiplier · limit
 * samples, jitter uniform in [0.5, 1), so a lasting change in the base latency is learnt. As in Netflix's,
 * no growth while fewer than half of the limit is in use. One departure: a drop always decreases the
 * limit and its RTT is never taken as the no-load RTT (Netflix's version can take a fast rejection as a
 * new minimum).
 *
 * Options: smoothing (1.0), probeMultiplier (30).
 */
export class VegasLimit implements Limit {
  readonly name = 'Vegas';
  private estimated: number;
  private readonly b: Bounds;
  private readonly smoothing: number;
  private readonly probeMultiplier: number;
  private rttNoLoad = 0;
  private probeCount = 0;
  private probeJitter: number;

  constructor(
    options: LimitOptions = {},
    private readonly random: Random,
  ) {
    this.b = bounds(options);
    this.estimated = this.b.initial;
    this.smoothing = clamp(options.smoothing ?? 1, 0.01, 1);
    this.probeMultiplier = options.probeMultiplier ?? 30;
    this.probeJitter = this.jitter();
  }

  get limit(): number {
    return Math.floor(this.estimated);
  }

  /** The unrounded estimate; for status and tests. */
  get estimate(): number {
    return this.estimated;
  }

  get rttNoLoadMs(): number {
    return this.rttNoLoad;
  }

  onSample(_startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    const l = Math.max(1, Math.floor(Math.log10(Math.floor(this.estimated))));
    if (dropped) {
      this.set(this.estimated - l);
      return;
    }
    if (!(rttMs > 0)) return;
    if (++this.probeCount >= this.probeJitter * this.probeMultiplier * this.estimated) {
      this.probeJitter = this.jitter();
      this.probeCount = 0;
      this.rttNoLoad = rttMs;
      return;
    }
    if (this.rttNoLoad === 0 || rttMs < this.rttNoLoad) {
      this.rttNoLoad = rttMs;
      return;
    }
    if (inflight * 2 < this.estimated) return; // app limited
    const queue = Math.ceil(this.estimated * (1 - this.rttNoLoad / rttMs));
    if (queue <= l) this.set(this.estimated + 6 * l);
    else if (queue < 3 * l) this.set(this.estimated + l);
    else if (queue > 6 * l) this.set(this.estimated - l);
  }

  private set(next: number): void {
    const bounded = clamp(next, this.b.min, this.b.max);
    this.estimated = clamp(
      (1 - this.smoothing) * this.estimated + this.smoothing * bounded,
      this.b.min,
      this.b.max,
    );
  }

  private jitter(): number {
    return 0.5 + this.random() * 0.5;
  }
}

registerLimit('Vegas', (options, deps: LimitDeps) => new VegasLimit(options, deps.random));
