import type { Random } from './clock.js';

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

/**
 * The n-th retry's delay without state, for callers that count failures themselves (work queues,
 * informers): the same growth and jitter as Backoff.
 */
export function backoffMs(attempt: number, random: Random, opts: Partial<BackoffOptions> = {}): number {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  const base = Math.min(o.maxMs, o.initialMs * o.multiplier ** Math.min(attempt, 60));
  return Math.max(0, base * (1 + o.jitter * (2 * random() - 1)));
}
