import type { Balancer, BalancerDeps } from '../../balancer/index.js';
import { ENVOY_LEAST_REQUEST, EnvoyLeastRequest } from './envoy-least-request.js';
import { WEIGHTED_RANDOM, WeightedRandom } from './weighted-random.js';

/**
 * The data planes' own algorithms, which sibyl programs over xDS rather than runs: Envoy's weighted
 * LEAST_REQUEST and a stock proxyless client's weighted pick. The simulator runs them over the
 * endpoint weights the operator pushes (src/tools/sim/operator-weights.ts), on its push interval
 * and with its report lag, as the routers get their hints.
 */
export const DATA_PLANE_POLICIES: readonly string[] = [ENVOY_LEAST_REQUEST, WEIGHTED_RANDOM];

export const isDataPlane = (policy: string): boolean => DATA_PLANE_POLICIES.includes(policy);

/** One router's instance of a data plane's policy, or undefined for any other name. */
export function dataPlaneBalancer(policy: string, deps: BalancerDeps): Balancer | undefined {
  if (policy === ENVOY_LEAST_REQUEST) return new EnvoyLeastRequest(deps);
  if (policy === WEIGHTED_RANDOM) return new WeightedRandom(deps);
  return undefined;
}
