import { parseListenAddress } from '../grpc/address.js';
import type { Msg } from './routes.js';
import { resourceName, type XdsPoolInput } from './types.js';

/**
 * How an endpoint shows to data planes. A fleet breaker that is open makes it DRAINING: Envoy, grpc-go
 * and grpc-js-xds all stop sending it new calls and let calls in flight finish. An endpoint Kubernetes
 * does not call ready is UNHEALTHY, which every client leaves out too.
 */
function healthOf(e: { ready: boolean; draining: boolean }): 'HEALTHY' | 'DRAINING' | 'UNHEALTHY' {
  if (!e.ready) return 'UNHEALTHY';
  return e.draining ? 'DRAINING' : 'HEALTHY';
}

/**
 * The pool's ClusterLoadAssignment: every endpoint in one locality of weight 1 (grpc clients ignore a
 * locality without a weight, so it is always set), each endpoint with its weight (at least 1: grpc-go
 * refuses 0) and health. Envoy's LEAST_REQUEST and gRPC's ring_hash read endpoint weights;
 * round_robin and gRPC's least_request do not.
 */
export function clusterLoadAssignment(pool: XdsPoolInput, weights: ReadonlyMap<string, number>): Msg {
  const seen = new Set<string>();
  const lb_endpoints: Msg[] = [];
  for (const e of pool.endpoints) {
    // Two EndpointSlices may list one address while a Service changes; grpc-go refuses duplicates.
    if (seen.has(e.address)) continue;
    seen.add(e.address);
    const { host, port } = parseListenAddress(e.address, `endpoint ${e.address} of ${pool.key}:`);
    lb_endpoints.push({
      endpoint: { address: { socket_address: { address: host, port_value: port } } },
      health_status: healthOf(e),
      load_balancing_weight: { value: Math.max(1, weights.get(e.address) ?? 1) },
    });
  }
  return {
    cluster_name: resourceName(pool.key),
    endpoints: lb_endpoints.length
      ? [{ locality: { region: 'sibyl' }, load_balancing_weight: { value: 1 }, lb_endpoints }]
      : [],
  };
}
