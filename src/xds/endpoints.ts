import { formatAddress, parseListenAddress } from '../grpc/address.js';
import { loopbackFor } from '../util/net.js';
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
 * The socket address data planes are given for an endpoint: xDS takes IP addresses only (Envoy refuses
 * a hostname in an EDS socket_address), so a name under .localhost, which sibyl's own dialers treat as
 * loopback (RFC 6761 §6.3; FQDN EndpointSlices list backends on loopback that way, src/util/net.ts),
 * goes as 127.0.0.1. Access logs name this address, so they are matched back through it too.
 */
export function dataPlaneAddress(address: string, context: string): { host: string; port: number } {
  const { host, port } = parseListenAddress(address, context);
  return { host: loopbackFor(host) ?? host, port };
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
    const { host, port } = dataPlaneAddress(e.address, `endpoint ${e.address} of ${pool.key}:`);
    const socket = formatAddress(host, port);
    if (seen.has(socket)) continue;
    seen.add(socket);
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
