import type { Limit } from './types.js';

/** A WindowedLimit's knobs; defaults in WINDOW_DEFAULTS. */
export interface WindowOptions {
  /** Shortest window, ms (Netflix's floor: 100). */
  minWindowMs: number;
  /** Longest window, ms. */
  maxWindowMs: number;
  /** Fewest samples a window holds: it stays open until it has them. */
  windowSize: number;
  /** Samples faster than this (ms) say nothing about queueing and are ignored. */
  minRttMs: number;
}

const WINDOW_DEFAULTS: WindowOptions = {
  minWindowMs: 100,
  maxWindowMs: 1000,
  windowSize: 10,
  minRttMs: 0.1,
};

/**
 * Feeds a delay-based Limit one sample per window instead of one per call, as Netflix's WindowedLimit
 * with its AverageSampleWindow (concurrency-limits, limit/WindowedLimit.java), the composition its
 * README gives for a gRPC server's Gradient2. A window closes at the first call to end past its end
 * time once it holds `windowSize` calls; it hands on their mean RTT, the most calls in flight any of
 * them saw, and whether any was dropped. The next one lasts twice the closed window's shortest RTT,
 * within [minWindowMs, maxWindowMs]. One departure: Netflix drops a window that ends with fewer than
 * `windowSize` calls; here it stays open until it has them. With Netflix's 1 s windows a thin one is
 * rare; with 100 ms ones an endpoint serving under 100 calls/s would never move its limit.
 *
 * Why: Gradient2 moves its limit by the ratio of its long-term RTT to each sample. Fed call by call,
 * that ratio is as noisy as the calls themselves, and its baseline is cut by 10% whenever one call
 * comes back in under half of it — a call that happened to find an idle slot. Both pull the limit below
 * what keeps the servers busy while queues still grow behind it. Windowed, on the simulator's overload
 * ramp to 2× (bench/scenarios/overload-ramp-limited.json, 3 seeds) every policy shed fewer calls
 * (Oracle 41.73% → 41.71%, Predictive 41.92% → 41.79%, LeastRequest 43.14% → 42.31%, Prequal
 * 45.41% → 42.80%); in the real router at 2× (test/resilience/overload.test.ts, 100 ms calls, one
 * run each) admitted calls waited a little less (p50 457 → 407 ms, p99 583 → 493 ms) for the same
 * goodput. The 100 ms floor (Netflix's smallest allowed window, against its 1 s default) lets a router
 * in front of millisecond backends move its limit ten times a second; at 1 s the ramp shed more.
 *
 * Pure: time comes from the samples (start + RTT, on the limiter's clock).
 */
export class WindowedLimit implements Limit {
  private readonly o: WindowOptions;
  private nextUpdateMs = -Infinity;
  private sum = 0;
  private count = 0;
  private minRtt = Infinity;
  private maxInflight = 0;
  private dropped = false;

  constructor(
    readonly delegate: Limit,
    options: Partial<WindowOptions> = {},
  ) {
    this.o = { ...WINDOW_DEFAULTS, ...options };
  }

  get name(): string {
    return this.delegate.name;
  }

  get limit(): number {
    return this.delegate.limit;
  }

  onSample(startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    if (!(rttMs >= this.o.minRttMs)) return;
    this.sum += rttMs;
    this.count++;
    if (rttMs < this.minRtt) this.minRtt = rttMs;
    if (inflight > this.maxInflight) this.maxInflight = inflight;
    if (dropped) this.dropped = true;
    const endMs = startMs + rttMs;
    if (endMs <= this.nextUpdateMs || this.count < this.o.windowSize) return;
    const { sum, count, minRtt, maxInflight } = this;
    const drop = this.dropped;
    this.sum = this.count = this.maxInflight = 0;
    this.minRtt = Infinity;
    this.dropped = false;
    this.nextUpdateMs = endMs + Math.min(Math.max(2 * minRtt, this.o.minWindowMs), this.o.maxWindowMs);
    this.delegate.onSample(startMs, sum / count, maxInflight, drop);
  }
}
