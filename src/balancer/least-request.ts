import { registerBalancer } from './registry.js';
import { DEFAULT_FAILURE_PENALTY_MS, decay, numberOption, otherIndex, randomIndex } from './common.js';
import type { Balancer, BalancerDeps, CallOutcome, Endpoint, PickRequest } from './types.js';

/**
 * LeastRequest: the power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
 * Balancing", 2001; Envoy's LEAST_REQUEST, Finagle's P2C). Sample two distinct candidates uniformly and
 * send to the one with fewer calls in flight from this router; a tie goes to either at random. Two
 * choices instead of the global minimum keep routers that share servers from all piling onto the same
 * "least loaded" one at once, at O(1) cost per pick.
 *
 * Failures: a server that fails at once has nothing in flight and would win every comparison
 * (sinkholing). So a failed call is counted as if it still occupied the server for a while: the load is
 *
 *     load = inflight + F,   F ← F · exp(−Δt/τ) + 1 on each failure,   τ = failurePenaltyMs
 *
 * F is the expected number of "virtual calls" still held when each failure holds a slot for an
 * exponentially distributed time of mean τ; by Little's law a server failing at rate λ carries λτ of
 * them, as if each failed call had lasted the penalty (default 1 s, the deadline). F fades with time, so
 * a server that recovers is tried again.
 *
 * Options: `failurePenaltyMs` (default 1000).
 */
export class LeastRequest implements Balancer {
  readonly name = 'LeastRequest';
  private readonly tauMs: number;
  /** Per endpoint: decayed failure count and when it was last decayed. Created when picked. */
  private readonly state = new Map<string, { failures: number; atMs: number }>();

  constructor(
    private readonly deps: BalancerDeps,
    options?: Record<string, unknown>,
  ) {
    this.tauMs = numberOption(options, 'failurePenaltyMs', DEFAULT_FAILURE_PENALTY_MS, 1);
  }

  pick(candidates: readonly Endpoint[]): Endpoint {
    const n = candidates.length;
    let chosen = candidates[0] as Endpoint;
    if (n > 1) {
      const i = randomIndex(this.deps.random, n);
      const a = candidates[i] as Endpoint;
      const b = candidates[otherIndex(this.deps.random, n, i)] as Endpoint;
      const now = this.deps.clock.now();
      const la = this.load(a, now);
      const lb = this.load(b, now);
      chosen = la < lb ? a : lb < la ? b : this.deps.random() < 0.5 ? a : b;
    }
    if (!this.state.has(chosen.id)) this.state.set(chosen.id, { failures: 0, atMs: this.deps.clock.now() });
    return chosen;
  }

  onCallEnded(ep: Endpoint, _req: PickRequest, outcome: CallOutcome): void {
    if (outcome.ok) return;
    const s = this.state.get(ep.id);
    if (!s) return; // not picked by us, or removed since
    const now = this.deps.clock.now();
    s.failures = s.failures * decay(now - s.atMs, this.tauMs) + 1;
    s.atMs = now;
  }

  onEndpointRemoved(id: string): void {
    this.state.delete(id);
  }

  /** inflight plus the decayed failure count; exposed for tests and status. */
  load(ep: Endpoint, now = this.deps.clock.now()): number {
    const s = this.state.get(ep.id);
    return s && s.failures > 0 ? ep.inflight + s.failures * decay(now - s.atMs, this.tauMs) : ep.inflight;
  }
}

registerBalancer('LeastRequest', (deps, options) => new LeastRequest(deps, options));
