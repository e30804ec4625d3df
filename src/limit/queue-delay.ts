import type { Random } from '../util/clock.js';
import { registerLimit } from './registry.js';
import { RttWindow } from './rtt-window.js';
import { bounds, clamp, type Bounds, type Limit, type LimitDeps, type LimitOptions } from './types.js';

/** QueueDelay's knobs (LimitOptions keys); defaults in QUEUE_DELAY_DEFAULTS. */
export interface QueueDelayOptions {
  /** Queueing delay allowed on the mean RTT, as a share of the no-queue RTT R₀. */
  delayTarget: number;
  /** Calls a window needs before it is judged. */
  windowSize: number;
  /** Shortest window, ms. */
  minWindowMs: number;
  /** Calls added to the limit per window under half the target (after the first cut). */
  growth: number;
  /** How often R₀ is re-measured by a drain, ms (times a jitter in [1, 1.5)). */
  remeasureMs: number;
  /** How long a limit that queued stays out of reach, ms; doubles each time it queues again. */
  holdMinMs: number;
  holdMaxMs: number;
  /** A window with drops (timeouts, the server's RESOURCE_EXHAUSTED) cuts the limit at least to this share. */
  backoff: number;
}

export const QUEUE_DELAY_DEFAULTS: QueueDelayOptions = {
  delayTarget: 0.3,
  windowSize: 10,
  minWindowMs: 100,
  growth: 0.5,
  remeasureMs: 30_000,
  holdMinMs: 8_000,
  holdMaxMs: 64_000,
  backoff: 0.9,
};

/**
 * In use: a call was admitted with this share of the limit in flight (the Limiter keeps a quarter of
 * the limit from sheddable calls and a tenth from default ones, so they never reach all of it).
 */
const IN_USE = 0.75;
/** Growth per window, as a share of the limit, until the first cut (a slow start, as TCP's). */
const SLOW_START = 0.25;
/** Calls from which a probe's window may show, beyond doubt, that it only queued. */
const PROBE_SAMPLES = 5;
/** Standard errors for "beyond doubt" (about 95%). */
const Z = 2;

/**
 * QueueDelay, the default Limit: holds the queueing delay its calls meet near a target.
 *
 * Signal. A router sees round-trip times, not a backend's queue. At a limit in use, Little's law ties the
 * calls in flight L to the backend's throughput X and the mean RTT R: L = X · R. Below the backend's own
 * concurrency (the knee) R stays at its no-queue value R₀; above it X stops growing and every extra call
 * only waits, so R grows with L. The queueing delay is R − R₀ over a window of calls admitted under the
 * current limit, on the mean, not CoDel's minimum: at a backend with a few slots a standing queue of one
 * call leaves some calls unqueued, and the minimum misses it.
 *
 * Control, once per window (≥ windowSize calls over ≥ minWindowMs, long enough that Z standard errors
 * of R are within half the target; at once when it shows a queue or a drop beyond doubt):
 *   - R over R₀ · (1 + delayTarget), with the limit reached, or a drop: cut to the calls X needs with no
 *     queue, L · R₀ / R (L the mean in flight; at most the limit · backoff on a drop);
 *   - R under half the target, with the limit busy (¾ of it in flight on average): grow by `growth`
 *     (by SLOW_START of the limit until the first cut);
 *   - between: leave it (a dead band, as Vegas's α and β, so that limiters sharing a backend and
 *     seeing it alike do not take turns cutting).
 * A growth that raised the limit is a probe. By a large step (small limits) it is also judged against
 * the window before it: if R rose by more than half of what L rose, the extra calls bought no
 * throughput, only wait, and the limit goes back, from PROBE_SAMPLES calls on when that is beyond doubt.
 * A probe that queued keeps its limit out of reach for holdMs, twice as long each time it fails again
 * (to holdMaxMs): at a backend with two slots, a probe of three queues every call it admits, so such
 * probes must be rare. The limit is the estimate rounded, so a cut from 3 to 2.4 holds 2.
 *
 * R₀ is the lowest window mean plus Z standard errors (so the luckiest of many noisy windows is not
 * taken for a faster backend). As Envoy's adaptive concurrency filter and BBR's ProbeRTT, it is
 * re-measured: every remeasureMs (jittered) a limit in use is halved for one window (a drain), R₀
 * becomes the lowest of the last period, and the window before the drain is judged against it. A drain
 * that lowered R almost in proportion to L found only queue, and another follows at once, so a limit
 * that started far above the knee comes down by halves. The other way, when cuts by a third or more did
 * not lower R by half of what Little's law gives, the delay is the backend's own (it got slower): R₀
 * takes the new R and the cuts are undone, rather than the limit collapsing until the next period.
 *
 * Why this design. CoDel (Nichols & Jacobson, "Controlling Queue Delay", ACM Queue 2012) gives the
 * target on a standing queue's delay, judged over an interval. Envoy's adaptive concurrency filter
 * (gradient controller) and BBR (Cardwell et al., ACM Queue 2016) give the periodic re-measurement of
 * R₀, without which a baseline learnt under load absorbs the queue: Gradient2's equilibrium, which let
 * admitted 100 ms calls take 400 ms at 2× load (docs/reliability.md). Envoy's own update,
 * limit · (R₀ + buffer) / R + √limit, was not taken: its √limit headroom keeps about √L calls queued,
 * at a backend with two slots a limit near 4.6, twice the knee. DAGOR (Zhou et al., SoCC 2018) admits by
 * the server's queuing time and Breakwater (Cho et al., OSDI 2020) by credits the server grants; both
 * need the backend to measure and report, and sibyl's router fronts arbitrary gRPC servers, so neither
 * was taken (their priority-aware shedding is the Limiter's). delayTarget 0.3: on the simulator's
 * overload ramp 0.2 held less goodput (94% against 99%) and 0.3 kept admitted p99 within 1.5× the
 * unloaded p99 (bench/results/overload-ramp-limited.json).
 *
 * Pure: time comes from the samples (start + RTT, on the limiter's clock), jitter from `random`.
 */
export class QueueDelayLimit implements Limit {
  readonly name = 'QueueDelay';
  private readonly b: Bounds;
  private readonly o: QueueDelayOptions;
  private est: number;
  /** While draining: the limit in force; the estimate comes back after. */
  private drainLimit: number | undefined;
  /** The window a drain interrupted, judged again against the drained R₀. */
  private drainFrom: { load: number; mean: number } | undefined;
  /** R₀ in force, and the lowest of the current period. */
  private base: number | undefined;
  private periodMin = Infinity;
  private periodEndMs: number | undefined;
  /** Calls admitted before this (the last change of limit) say nothing about the current one. */
  private sinceMs = -Infinity;
  private w = new RttWindow();
  private cutOnce = false;
  /** A growth to `limit` from `from` (its window's mean R), judged by the next window in use. */
  private probing: { limit: number; from: number; mean: number } | undefined;
  private lastMean = NaN;
  /** The limit that last queued, out of reach until ceilingUntilMs. */
  private ceiling = Infinity;
  private ceilingUntilMs = -Infinity;
  private holdMs: number;
  /** The window before a run of cuts, for the check that they lowered R. */
  private cutFrom: { limit: number; mean: number; est: number } | undefined;

  constructor(
    options: LimitOptions = {},
    private readonly random: Random = () => 0,
  ) {
    this.b = bounds(options);
    const o = { ...QUEUE_DELAY_DEFAULTS };
    for (const k of Object.keys(o) as (keyof QueueDelayOptions)[]) o[k] = options[k] ?? o[k];
    this.o = o;
    this.est = this.b.initial;
    this.holdMs = o.holdMinMs;
  }

  get limit(): number {
    return this.drainLimit ?? clamp(Math.round(this.est), Math.ceil(this.b.min), Math.floor(this.b.max));
  }

  /** The unrounded estimate; for status and tests. */
  get estimate(): number {
    return this.est;
  }

  /** R₀ in force, ms (undefined before the first window); for status and tests. */
  get baseRttMs(): number | undefined {
    return this.base;
  }

  get draining(): boolean {
    return this.drainLimit !== undefined;
  }

  onSample(startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    if (startMs < this.sinceMs || !(dropped || rttMs > 0)) return;
    const w = this.w;
    const endMs = startMs + rttMs;
    w.add(endMs, rttMs, inflight, dropped);
    if (!this.closes(w, endMs)) return;
    this.w = new RttWindow();
    const before = this.limit;
    this.judge(endMs, w);
    // Judge a change on the calls admitted after it; after a cut, only once the queue it leaves has
    // drained (about one RTT), or the next window holds calls that waited behind the old queue.
    if (this.limit < before) this.sinceMs = endMs + (w.mean ?? 0);
    else if (this.limit > before) this.sinceMs = endMs;
  }

  private closes(w: RttWindow, endMs: number): boolean {
    const mean = w.mean;
    // a probe that only queued, beyond doubt: judged early, since each of its calls waits
    const p = this.probing;
    const band = this.o.delayTarget / 2;
    if (p && mean !== undefined && w.calls >= PROBE_SAMPLES && w.used >= IN_USE * this.limit) {
      if (queuedOnly(p, this.limit, mean - Z * w.se, band)) return true;
    }
    if (w.calls < this.o.windowSize) return false;
    if (mean === undefined) return true;
    if (!this.draining && this.base !== undefined) {
      if (w.drops > 0 || mean - Z * w.se > this.level(1)) return true; // beyond doubt
    }
    if (endMs - w.fromMs < this.o.minWindowMs) return false;
    return Z * w.se <= (this.o.delayTarget / 2) * mean || w.calls >= 10 * this.o.windowSize;
  }

  /** R₀ · (1 + share · delayTarget): the target at 1, half of it at ½. */
  private level(share: number): number {
    return (this.base as number) * (1 + share * this.o.delayTarget);
  }

  private judge(now: number, w: RttWindow): void {
    const { mean, load } = w;
    if (mean !== undefined) {
      const high = mean + Z * w.se;
      this.periodMin = Math.min(this.periodMin, high);
      if (this.base === undefined || high < this.base) this.base = high;
    }
    if (this.draining) return this.endDrain(now, mean);
    const probe = this.probing;
    this.probing = undefined;
    const cutFrom = this.cutFrom;
    this.cutFrom = undefined;
    if (mean === undefined) return this.cut(now, this.est * this.o.backoff);
    const reached = w.used >= IN_USE * this.limit;
    if (!reached)
      this.probing = probe; // a window that never reached the limit says nothing of a probe
    else if (cutFrom && this.rebase(mean, cutFrom)) return;
    const over = reached && mean > this.level(1);
    const band = this.o.delayTarget / 2;
    const queued = reached && probe !== undefined && queuedOnly(probe, this.limit, mean, band);
    if (w.drops > 0 || over || queued) {
      const little = (Math.min(load, this.limit) * this.level(0)) / mean;
      let to = over ? little : Infinity;
      if (w.drops > 0) to = Math.min(little, this.est * this.o.backoff);
      if (queued) to = Math.min(to, probe.from);
      if (reached && probe && this.limit === probe.limit) this.hold(now, probe.limit);
      return this.cut(now, to, { limit: this.limit, mean, est: this.est }, cutFrom);
    }
    if (reached) {
      this.lastMean = mean;
      if (probe && mean > this.level(0.5)) this.probing = probe; // not clear yet either way
      // two calls above the limit that queued, without a queue: capacity grew; short holds again
      if (this.limit > this.ceiling + 1) this.holdMs = this.o.holdMinMs;
    }
    if (this.periodEndMs === undefined || now >= this.periodEndMs) {
      this.newPeriod(now, mean, load, reached);
      if (this.draining) return;
    }
    if (load >= IN_USE * this.limit && mean <= this.level(0.5)) this.grow(now);
  }

  private grow(now: number): void {
    const before = this.limit;
    const step = this.cutOnce ? this.o.growth : Math.max(this.o.growth, SLOW_START * this.est);
    let est = Math.min(this.b.max, this.est + step);
    if (now < this.ceilingUntilMs) est = Math.min(est, Math.max(this.est, this.ceiling - 0.51));
    this.est = est;
    if (this.limit > before && Number.isFinite(this.lastMean)) {
      this.probing = { limit: this.limit, from: before, mean: this.lastMean };
    }
  }

  /** Cuts to `to` (never up). */
  private cut(
    now: number,
    to: number,
    from?: QueueDelayLimit['cutFrom'],
    run?: QueueDelayLimit['cutFrom'],
  ): void {
    this.est = Math.max(this.b.min, Math.min(this.est, to));
    this.cutOnce = true;
    this.cutFrom = run ?? from; // the first of a run of cuts is what the rebase check compares with
  }

  /**
   * A probe of `limit` found a queue: keep it out of reach for holdMs, twice as long each time the same
   * limit fails again. (Only a probe: a cut after a transient must not hold a limit that serves well.)
   */
  private hold(now: number, limit: number): void {
    this.holdMs = limit === this.ceiling ? Math.min(2 * this.holdMs, this.o.holdMaxMs) : this.o.holdMinMs;
    this.ceiling = limit;
    this.ceilingUntilMs = now + this.holdMs * (1 + 0.5 * this.random());
  }

  /** Cuts by a third or more that did not lower R by half of what Little's law gives: the backend's own. */
  private rebase(mean: number, c: NonNullable<QueueDelayLimit['cutFrom']>): boolean {
    const fall = 1 - this.limit / c.limit;
    if (fall < 1 / 3 || mean < c.mean * (1 - fall / 2)) return false;
    this.base = mean;
    this.periodMin = mean;
    this.est = c.est;
    return true;
  }

  /** A new period: R₀ becomes the lowest of the last, and a limit in use drains for one window. */
  private newPeriod(now: number, mean: number, load: number, reached: boolean): void {
    if (this.periodEndMs !== undefined) this.base = this.periodMin;
    this.periodMin = Infinity;
    this.periodEndMs = now + this.o.remeasureMs * (1 + 0.5 * this.random());
    if (!reached || this.limit <= this.b.min) return;
    this.drainFrom = { load, mean };
    this.drainLimit = Math.max(Math.ceil(this.b.min), Math.floor(this.limit / 2));
  }

  private endDrain(now: number, mean: number | undefined): void {
    const drained = this.drainLimit as number;
    this.drainLimit = undefined;
    const d = this.drainFrom as NonNullable<QueueDelayLimit['drainFrom']>;
    this.drainFrom = undefined;
    if (d.mean > this.level(1)) this.cut(now, (Math.min(d.load, this.limit) * this.level(0)) / d.mean);
    // R fell with L nearly in proportion (¾ of it or more): it was all queue, and may still be: again
    const proportional = 1 - drained / Math.max(d.load, drained);
    if (mean !== undefined && proportional > 0 && d.mean - mean >= 0.75 * proportional * d.mean) {
      this.periodEndMs = now;
    }
  }
}

/**
 * Little's law on a growth from `p.from` calls (mean R p.mean) to `limit`, by a step of at least `band`
 * of it: at a fixed X, R grows in proportion to L. If R rose by more than half that, the extra calls
 * bought little throughput and mostly waited.
 */
function queuedOnly(p: { from: number; mean: number }, limit: number, mean: number, band: number): boolean {
  const step = limit / p.from - 1;
  return step >= band && mean > p.mean * (1 + step / 2);
}

registerLimit('QueueDelay', (options, deps: LimitDeps) => new QueueDelayLimit(options, deps.random));
