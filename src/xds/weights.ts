import type { XdsEndpointInput } from './types.js';

/**
 * Endpoint weights for data planes: each endpoint's capacity in calls per second, estimated as its
 * concurrency over its predicted service time (Little's law: a server with c slots, each held s
 * seconds per call, completes c/s calls per second when busy). Service time, not response time: a
 * weight that follows queueing moves traffic away, the queue drains, the weight swings back, and the
 * pool oscillates.
 *
 * Weights are quantised to two significant figures and held with hysteresis: a new estimate replaces
 * the weight in force only when it is more than HYSTERESIS away from it, so prediction noise pushes
 * nothing to data planes. Every weight is at least 1 (grpc-go refuses an endpoint weight of 0) and at
 * most MAX_WEIGHT, so a thousand endpoints' weights still sum below 2^32 as Envoy requires.
 */
export const HYSTERESIS = 0.15;
export const MAX_WEIGHT = 1_000_000;

/**
 * Calls per second one endpoint can complete successfully (its goodput capacity), or undefined
 * without a prediction. Failures are taken out: a server that fails every call in a millisecond has
 * the shortest "service time" of all and would otherwise get the highest weight (the simulator's
 * sinkhole scenario: 25.7% errors under EnvoyLeastRequest before this); here it gets the least weight
 * until its fleet breaker drains it.
 */
export function capacity(e: XdsEndpointInput): number | undefined {
  const s = e.predictedServiceMs;
  if (s === undefined || !Number.isFinite(s) || s <= 0) return undefined;
  const ok = 1 - Math.min(1, Math.max(0, e.errorRate ?? 0));
  return ((Math.max(1, e.concurrency ?? 1) * 1000) / s) * ok;
}

/** x rounded to two significant figures, within [1, MAX_WEIGHT]. */
export function quantise(x: number): number {
  if (!Number.isFinite(x) || x <= 1) return 1;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(x)) - 1);
  return Math.min(MAX_WEIGHT, Math.max(1, Math.round(x / step) * step));
}

/**
 * The weight to push: the previous one while the estimate stays within the hysteresis band around
 * it, else the quantised estimate.
 */
export function hold(previous: number | undefined, estimate: number): number {
  if (previous !== undefined && Math.abs(estimate - previous) <= HYSTERESIS * previous) return previous;
  return quantise(estimate);
}

/**
 * Capacities for every endpoint of a pool: endpoints without a prediction get the mean of those with
 * one (neutral: they neither attract nor shed traffic), and when none has one every endpoint is
 * equal. `equal` says the pool has nothing to weight by.
 */
function capacities(endpoints: readonly XdsEndpointInput[]): { values: number[]; equal: boolean } {
  const known = endpoints.map(capacity);
  const present = known.filter((c): c is number => c !== undefined);
  if (present.length === 0) return { values: endpoints.map(() => 1), equal: true };
  const mean = present.reduce((a, b) => a + b, 0) / present.length;
  return { values: known.map((c) => c ?? mean), equal: false };
}

/**
 * The weights in force for one pool, kept between updates so hysteresis has something to hold to.
 * `update` returns a weight per endpoint address.
 */
export class PoolWeights {
  private readonly inForce = new Map<string, number>();

  update(endpoints: readonly XdsEndpointInput[]): Map<string, number> {
    const { values } = capacities(endpoints);
    const out = new Map<string, number>();
    endpoints.forEach((e, i) => out.set(e.address, hold(this.inForce.get(e.address), values[i] as number)));
    this.inForce.clear();
    for (const [a, w] of out) this.inForce.set(a, w);
    return out;
  }

  /** Total estimated capacity in calls/s of the endpoints that take traffic, for the open-loop check. */
  static usable(endpoints: readonly XdsEndpointInput[]): number {
    const { values, equal } = capacities(endpoints);
    if (equal) return 0;
    return endpoints.reduce((sum, e, i) => (e.ready && !e.draining ? sum + (values[i] as number) : sum), 0);
  }
}
