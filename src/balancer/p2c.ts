import { otherIndex, randomIndex } from './common.js';
import type { Balancer, BalancerDeps, CallOutcome, Endpoint, PickRequest } from './types.js';

/**
 * A load metric, after tower's `Load` trait: one figure per endpoint, lower is better, that a balancer
 * compares. A metric keeps state only for endpoints it placed calls on (`onPicked` creates it), so an
 * endpoint other routers fill says nothing to it but its own in-flight count.
 */
export interface LoadMetric {
  load(ep: Endpoint, nowMs: number): number;
  /** `ep` was chosen for a call. */
  onPicked?(ep: Endpoint, nowMs: number): void;
  /** A call on `ep` ended (after the endpoint's in-flight count was lowered). */
  onCallEnded(ep: Endpoint, outcome: CallOutcome, nowMs: number): void;
  onEndpointRemoved?(id: string): void;
  /** See Balancer.onEndpointReadmitted. */
  onEndpointReadmitted?(id: string, nowMs: number): void;
}

/**
 * The power of two choices over a load metric (Mitzenmacher, "The Power of Two Choices in Randomized
 * Load Balancing", 2001; tower's `p2c::Balance`, Finagle's P2C, Envoy's LEAST_REQUEST): sample two
 * distinct candidates uniformly and send to the one of lower load, a tie to either at random. Two
 * choices instead of the global minimum keep routers that share servers from all piling onto the same
 * "least loaded" one at once, at O(1) cost per pick. LeastRequest and PeakEwma are this with their
 * metric (least-request.ts, peak-ewma.ts).
 */
export class P2C implements Balancer {
  constructor(
    readonly name: string,
    private readonly metric: LoadMetric,
    private readonly deps: BalancerDeps,
  ) {}

  pick(candidates: readonly Endpoint[]): Endpoint {
    const n = candidates.length;
    const now = this.deps.clock.now();
    let chosen = candidates[0] as Endpoint;
    if (n > 1) {
      const i = randomIndex(this.deps.random, n);
      const a = candidates[i] as Endpoint;
      const b = candidates[otherIndex(this.deps.random, n, i)] as Endpoint;
      const la = this.metric.load(a, now);
      const lb = this.metric.load(b, now);
      chosen = la < lb ? a : lb < la ? b : this.deps.random() < 0.5 ? a : b;
    }
    this.metric.onPicked?.(chosen, now);
    return chosen;
  }

  onCallEnded(ep: Endpoint, _req: PickRequest, outcome: CallOutcome): void {
    this.metric.onCallEnded(ep, outcome, this.deps.clock.now());
  }

  onEndpointRemoved(id: string): void {
    this.metric.onEndpointRemoved?.(id);
  }

  onEndpointReadmitted(id: string): void {
    this.metric.onEndpointReadmitted?.(id, this.deps.clock.now());
  }

  /** The metric's figure for `ep` now; for tests and status. */
  load(ep: Endpoint): number {
    return this.metric.load(ep, this.deps.clock.now());
  }
}
