import { registerLimit } from './registry.js';
import { bounds, clamp, type Bounds, type Limit, type LimitOptions } from './types.js';

/**
 * Gradient2, as Netflix's Gradient2Limit. Compares the latest RTT (short) with a long exponential
 * average (the baseline) and lets the limit follow their ratio:
 *
 *   gradient = clamp(longRTT / shortRTT, 0.5, 1)
 *   newLimit = limit · gradient + queueSize
 *   limit    = clamp(limit · (1 − smoothing) + newLimit · smoothing, min, max)
 *
 * Average rather than minimum RTT, because RPC cost varies call to call and a minimum biases the limit
 * too low. longRTT is Netflix's ExpAvgMeasurement (a plain mean over the first 10 samples, then an EMA
 * with factor 2 / (longWindow + 1)); when longRTT > 2 · shortRTT (load has gone) it is cut by 10% per
 * sample so the baseline comes back down quickly. The limit does not move while fewer than half of it is
 * in use ("app limited"): an idle client has learnt nothing about capacity.
 *
 * One departure: Netflix's Gradient2 ignores `didDrop`. Here a drop halves the target with no queue
 * allowance (newLimit = limit · 0.5, so with the smoothing the limit falls by 10% per drop, AIMD's
 * backoff) and its RTT is left out of the averages, because a server that sheds load answers fast and
 * would otherwise pull the limit up — the limiter's version of sinkholing. Without this, the formula
 * cannot take the limit below 2 · queueSize.
 *
 * Options: smoothing (0.2), queueSize (4), longWindow (600).
 */
export class Gradient2Limit implements Limit {
  readonly name = 'Gradient2';
  private estimated: number;
  private readonly b: Bounds;
  private readonly smoothing: number;
  private readonly queueSize: number;
  private readonly longFactor: number;
  private longRtt = 0;
  private longCount = 0;

  constructor(options: LimitOptions = {}) {
    this.b = bounds(options);
    this.estimated = this.b.initial;
    this.smoothing = clamp(options.smoothing ?? 0.2, 0.01, 1);
    this.queueSize = options.queueSize ?? 4;
    this.longFactor = 2 / ((options.longWindow ?? 600) + 1);
  }

  get limit(): number {
    return Math.floor(this.estimated);
  }

  /** The unrounded estimate; for status and tests. */
  get estimate(): number {
    return this.estimated;
  }

  /** The baseline RTT, ms; for status and tests. */
  get longRttMs(): number {
    return this.longRtt;
  }

  onSample(_startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    if (dropped) {
      this.update(0.5, 0);
      return;
    }
    if (!(rttMs > 0)) return;
    if (this.longCount < 10) this.longRtt = (this.longRtt * this.longCount + rttMs) / ++this.longCount;
    else this.longRtt += (rttMs - this.longRtt) * this.longFactor;
    if (this.longRtt / rttMs > 2) this.longRtt *= 0.9;
    if (inflight < this.estimated / 2) return; // app limited
    this.update(clamp(this.longRtt / rttMs, 0.5, 1), this.queueSize);
  }

  private update(gradient: number, queueSize: number): void {
    const next = this.estimated * gradient + queueSize;
    const smoothed = this.estimated * (1 - this.smoothing) + next * this.smoothing;
    this.estimated = clamp(smoothed, this.b.min, this.b.max);
  }
}

registerLimit('Gradient2', (options) => new Gradient2Limit(options));
