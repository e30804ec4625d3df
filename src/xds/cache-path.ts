import { parseListenAddress } from '../grpc/address.js';
import { packAny } from './proto.js';
import { duration, type Msg } from './routes.js';
import { resourceName, type XdsPoolInput } from './types.js';

/**
 * CacheTiers with Envoy as the data plane ("routers behind Envoy", docs/architecture.md, Cache tiers):
 * Envoy sends a pool's cacheable methods to the sibyl routers that serve the pool, which answer hits
 * from their L1/L2/L3 and forward misses to the pool's backends as they always do; every other method
 * goes from Envoy straight to the backends. The route's cluster is an aggregate cluster (Envoy's
 * envoy.clusters.aggregate: priority-ordered failover between clusters) of the routers first and the
 * pool's own cluster second, so Envoy falls back to the backends by itself when no router is
 * reachable: the operator leaves the routers' cluster empty when none is registered, and outlier
 * detection ejects a router Envoy cannot connect to before the operator learns it is gone.
 */

const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const AGGREGATE = 'envoy.extensions.clusters.aggregate.v3.ClusterConfig';
const PREVIOUS_PRIORITIES = 'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

/** The routers' EDS cluster and the aggregate cluster of a pool with cacheable methods. */
export const routersClusterName = (key: string): string => `${resourceName(key)}/routers`;
export const cachedClusterName = (key: string): string => `${resourceName(key)}/cached`;

/** The pool's cacheable methods that Envoy sends through routers (none without a tier's cache). */
export function cacheableMethods(pool: XdsPoolInput): readonly string[] {
  return pool.cache?.methods ?? [];
}

const statName = (key: string, what: string) => `sibyl_${key.replace(/[./]/g, '_')}_${what}`;

/**
 * The routers as an EDS cluster: HTTP/2 (the router is an h2c gRPC proxy), LEAST_REQUEST. Outlier
 * detection counts only failures Envoy itself meets (connect failure, reset, timeout:
 * split_external_local_origin_errors) and ejects a router at the first one, any share of them: a
 * backend's error that a router forwards is not the router's fault and must not eject it. No panic
 * mode, so an ejected router gets no calls and the aggregate cluster fails over to the backends.
 */
export function routersCluster(pool: XdsPoolInput): Msg {
  const name = routersClusterName(pool.key);
  return {
    name,
    alt_stat_name: statName(pool.key, 'routers'),
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    connect_timeout: duration(1000),
    lb_policy: 'LEAST_REQUEST',
    common_lb_config: { healthy_panic_threshold: { value: 0 } },
    typed_extension_protocol_options: {
      [HTTP_OPTIONS]: packAny(HTTP_OPTIONS, { explicit_http_config: { http2_protocol_options: {} } }),
    },
    outlier_detection: {
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: { value: 1 },
      enforcing_consecutive_local_origin_failure: { value: 100 },
      enforcing_consecutive_5xx: { value: 0 },
      enforcing_consecutive_gateway_failure: { value: 0 },
      enforcing_success_rate: { value: 0 },
      enforcing_local_origin_success_rate: { value: 0 },
      interval: duration(1000),
      base_ejection_time: duration(10_000),
      max_ejection_percent: { value: 100 },
    },
  };
}

/** The routers' ClusterLoadAssignment: every registered router, equal weights; none leaves it empty. */
export function routersLoadAssignment(pool: XdsPoolInput): Msg {
  const name = routersClusterName(pool.key);
  const lb_endpoints = (pool.cache?.routers ?? []).map((address) => {
    const { host, port } = parseListenAddress(address, `router ${address}:`);
    return {
      endpoint: { address: { socket_address: { address: host, port_value: port } } },
      health_status: 'HEALTHY',
    };
  });
  return {
    cluster_name: name,
    endpoints: lb_endpoints.length
      ? [{ locality: { region: 'sibyl' }, load_balancing_weight: { value: 1 }, lb_endpoints }]
      : [],
  };
}

/** Routers first, the pool's backends when no router is healthy (CLUSTER_PROVIDED: each cluster balances its own). */
export function cachedCluster(pool: XdsPoolInput): Msg {
  return {
    name: cachedClusterName(pool.key),
    alt_stat_name: statName(pool.key, 'cached'),
    connect_timeout: duration(1000),
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: {
      name: 'envoy.clusters.aggregate',
      typed_config: packAny(AGGREGATE, { clusters: [routersClusterName(pool.key), resourceName(pool.key)] }),
    },
  };
}

/**
 * The route action of a cacheable method: to the aggregate cluster, with the pool's timeout. Envoy
 * retries only what never reached a router (connect failure, a refused stream), and a retry skips the
 * priorities already tried (previous_priorities over the aggregate cluster's linearised priorities: the
 * routers' first, the backends' next), so a router that refuses connections sends its call to the
 * backends at once, before outlier detection has ejected it. Retries and hedging of a miss are the
 * router's, as without Envoy.
 */
export function cachedAction(pool: XdsPoolInput): Msg {
  return {
    cluster: cachedClusterName(pool.key),
    timeout: duration(pool.spec.timeoutMs ?? 0),
    max_stream_duration: { grpc_timeout_header_max: duration(0) },
    retry_policy: {
      retry_on: 'connect-failure,refused-stream',
      num_retries: { value: 2 },
      retry_back_off: { base_interval: duration(5), max_interval: duration(50) },
      retry_priority: {
        name: 'envoy.retry_priorities.previous_priorities',
        typed_config: packAny(PREVIOUS_PRIORITIES, { update_frequency: 1 }),
      },
    },
  };
}
