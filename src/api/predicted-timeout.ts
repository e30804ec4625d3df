import type { PredictedTimeoutSpec } from './resolve.js';

/**
 * spec.timeout.predicted's rule (issue 17, "Deadlines from predictions"; the seed's query optimiser:
 * timeout = max(multiplier × predicted latency, floor)), the one place it is written: a try's deadline
 * is multiplier × the call's predicted PREDICTED_TIMEOUT_QUANTILE, at least the floor, at most the
 * ceiling. The router (src/router/try-deadline.ts) and the simulator (src/tools/sim/try-policy.ts) apply
 * it per try; the operator (src/operator/deadlines.ts) per method, rounded for status and Envoy.
 */

/** The quantile of a call's predicted latency that the multiplier multiplies (its p99). */
export const PREDICTED_TIMEOUT_QUANTILE = 0.99;

/** min(max(multiplier × p99Ms, floor), ceiling), ms. Pure. */
export function predictedTryTimeoutMs(spec: PredictedTimeoutSpec, p99Ms: number): number {
  return Math.min(Math.max(spec.multiplier * p99Ms, spec.floorMs), spec.ceilingMs ?? Infinity);
}
