import type { Balancer, BalancerDeps, Endpoint } from '../../balancer/index.js';
import { leastCost } from '../../balancer/common.js';
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
    const fleetInflight = (ep: Endpoint): number => {
      const i = (ep as SimEndpoint).index;
      let n = 0;
      for (const r of routers) n += (r.endpoints[i] as SimEndpoint).inflight;
      return n;
    };
    return leastCost(candidates, fleetInflight, this.deps.random);
  }

  onCallEnded(): void {}
}

export const FLEET_LEAST_REQUEST = 'FleetLeastRequest';
