import type { Random } from '../util/clock.js';

/**
 * Small helpers shared by the policies. Nothing here holds state.
 */

/**
 * What a failed call costs a policy that ranks by latency. A fast failure must never look cheap, or
 * least-request and EWMA policies pour traffic into a server that fails at once ("sinkholing",
 * FIELD-NOTES "Tail behaviour"). 1 s is the simulator's default deadline; the router sets
 * `failurePenaltyMs` to the pool's timeout so a failure costs what the client would have waited.
 */
export const DEFAULT_FAILURE_PENALTY_MS = 1000;

/** exp(−Δt/τ): the weight an exponentially decaying memory keeps after Δt (never negative Δt). */
export function decay(dtMs: number, tauMs: number): number {
  return dtMs <= 0 ? 1 : Math.exp(-dtMs / tauMs);
}

/** A uniform index in [0, n). */
export function randomIndex(random: Random, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

/** A uniform index in [0, n) other than `i` (n ≥ 2). */
export function otherIndex(random: Random, n: number, i: number): number {
  const j = randomIndex(random, n - 1);
  return j >= i ? j + 1 : j;
}

/** The latency a failed call is charged: at least the penalty, never less than it really took. */
export function chargedLatencyMs(ok: boolean, latencyMs: number, failurePenaltyMs: number): number {
  return ok ? latencyMs : Math.max(latencyMs, failurePenaltyMs);
}

/**
 * The candidate of least cost, ties broken uniformly at random (reservoir sampling over the tied
 * ones, so one pass and no allocation). Used by the simulator's references, which rank by a figure no
 * router has.
 */
export function leastCost<T>(candidates: readonly T[], cost: (c: T) => number, random: Random): T {
  let best = candidates[0] as T;
  let least = Infinity;
  let ties = 0;
  for (const c of candidates) {
    const x = cost(c);
    if (x < least) {
      best = c;
      least = x;
      ties = 1;
    } else if (x === least && random() * ++ties < 1) best = c;
  }
  return best;
}
