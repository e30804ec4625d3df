import type { Balancer, BalancerDeps, Endpoint } from '../../balancer/index.js';
import { weightOf } from './envoy-least-request.js';

export const WEIGHTED_RANDOM = 'WeightedRandom';

/**
 * What a stock proxyless gRPC client does with the operator's endpoint weights: of its policies only
 * ring_hash reads `load_balancing_weight` (round_robin, weighted_round_robin and least_request ignore
 * it; gRFC A42), and with a hash per call the ring sends each call to an endpoint with probability
 * proportional to its weight. Open loop: nothing the client sees of the endpoints' load (its own calls
 * in flight, their latencies) changes where the next call goes, only the next weight push does.
 */
export class WeightedRandom implements Balancer {
  readonly name = WEIGHTED_RANDOM;

  constructor(private readonly deps: BalancerDeps) {}

  pick(candidates: readonly Endpoint[]): Endpoint {
    let total = 0;
    for (const ep of candidates) total += weightOf(ep);
    let u = this.deps.random() * total;
    for (const ep of candidates) {
      u -= weightOf(ep);
      if (u < 0) return ep;
    }
    return candidates[candidates.length - 1] as Endpoint;
  }

  onCallEnded(): void {}
}
