import type { Random } from '../util/clock.js';

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * the n-th retry waits a random time in [base·2^n / 2, base·2^n], capped at max.
 */
export function backoffMs(attempt: number, random: Random, baseMs = 200, maxMs = 30_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}
