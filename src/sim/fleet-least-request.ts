import type { Balancer, BalancerDeps, Endpoint } from '../balancer/index.js';
import type { SimEndpoint, SimRouter } from './router.js';

/**
 * A second reference, between the real policies and the Oracle: least request over the whole fleet's
 * in-flight counts — every router's calls open on each server, which no router knows (each sees only
 * its own). Ties broken at random. It measures how much of the Oracle's lead is the routers' partial
 * view of one another's load, as opposed to the Oracle's knowledge of each call's remaining work. Lives
 * in the simulator only; not a baseline for the targets.
 */
export class FleetLeastRequest implements Balancer {
  readonly name = FLEET_LEAST_REQUEST;

  constructor(
    private readonly deps: BalancerDeps,
    private readonly routers: () => readonly SimRouter[],
  ) {}

  pick(candidates: readonly Endpoint[]): Endpoint {
    const routers = this.routers();
    let best = candidates[0] as Endpoint;
    let least = Infinity;
    let ties = 0;
    for (const ep of candidates) {
      const i = (ep as SimEndpoint).index;
      let n = 0;
      for (const r of routers) n += (r.endpoints[i] as SimEndpoint).inflight;
      if (n < least) {
        best = ep;
        least = n;
        ties = 1;
      } else if (n === least && this.deps.random() * ++ties < 1) best = ep;
    }
    return best;
  }

  onCallEnded(): void {}
}

export const FLEET_LEAST_REQUEST = 'FleetLeastRequest';
