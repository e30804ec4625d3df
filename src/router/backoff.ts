import type { Random } from '../util/clock.js';

/**
 * Exponential backoff with jitter, as gRPC's connection-backoff.md specifies it: each delay is the
 * previous one × multiplier, capped at maxMs, then spread by ±jitter so a fleet of routers does not
 * reconnect in lockstep. reset() after a success.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 200,
  maxMs: 10_000,
  multiplier: 1.6,
  jitter: 0.2,
};

export class Backoff {
  private current: number;
  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: Random,
  ) {
    this.current = opts.initialMs;
  }

  /** The next delay, ms; the one after it is longer. */
  next(): number {
    const base = this.current;
    this.current = Math.min(this.opts.maxMs, this.current * this.opts.multiplier);
    return Math.max(0, base * (1 + this.opts.jitter * (2 * this.random() - 1)));
  }

  reset(): void {
    this.current = this.opts.initialMs;
  }
}
