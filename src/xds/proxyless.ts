import { PREDICTIVE_LB } from '../client/config.js';
import { packAny, toStruct } from './proto.js';
import { matchRoutes, proxylessAction, type Msg } from './routes.js';
import { resourceName, type XdsPoolInput } from './types.js';
import { PoolWeights } from './weights.js';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const POLICIES = 'envoy.extensions.load_balancing_policies';

/** Below this share of the estimated capacity, an open-loop weighted pick is safe. */
const WEIGHTED_BELOW = 0.5;

/**
 * The Listener a proxyless client asks for when it dials xds:///NAME.NAMESPACE: an api_listener
 * holding an HttpConnectionManager with the pool's routes inline (no RDS round trip) and the router
 * filter, which gRPC requires last.
 */
export function proxylessListener(pool: XdsPoolInput): Msg {
  const name = resourceName(pool.key);
  const { exact, prefix } = matchRoutes(pool);
  const action = proxylessAction(pool);
  const hcm = {
    stat_prefix: name,
    route_config: {
      name,
      virtual_hosts: [
        {
          name,
          domains: ['*'],
          routes: [...exact, ...prefix].map((match) => ({ match, route: action })),
        },
      ],
    },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny(ROUTER, {}) }],
  };
  return { name, api_listener: { api_listener: packAny(HCM, hcm) } };
}

/** Which stock policy follows sibyl's own in the list, and why (shown on status). */
export type StockPolicy = 'ring_hash' | 'least_request';

/**
 * The best stock policy for the pool's load. Well below capacity, weights are safe to follow open
 * loop, and ring_hash with no hash policy on the route hashes each call at random, which is a pick
 * weighted by endpoint weight (both grpc-go and grpc-js-xds read the weights there). Otherwise, or
 * with nothing to weight by, least_request (gRFC A48), which follows queues; grpc-js-xds lacks it and
 * goes on to round_robin.
 */
export function stockPolicy(pool: XdsPoolInput): StockPolicy {
  const capacity = PoolWeights.usable(pool.endpoints);
  const load = pool.offeredCallsPerSec;
  return capacity > 0 && load !== undefined && load < WEIGHTED_BELOW * capacity
    ? 'ring_hash'
    : 'least_request';
}

function policy(name: string, typeName: string, config: Msg): Msg {
  return { typed_extension_config: { name, typed_config: packAny(typeName, config) } };
}

/**
 * The proxyless Cluster: EDS over ADS, and a policy list clients walk in order, taking the first they
 * have (gRFC A52): sibyl's in-process policy as a TypedStruct, the stock policy for the pool's load,
 * then round_robin, which every client has.
 */
export function proxylessCluster(pool: XdsPoolInput): Msg {
  const name = resourceName(pool.key);
  const { spec } = pool;
  const stock =
    stockPolicy(pool) === 'ring_hash'
      ? policy(`${POLICIES}.ring_hash`, `${POLICIES}.ring_hash.v3.RingHash`, {
          hash_function: 'XX_HASH',
          minimum_ring_size: { value: 1024 },
        })
      : policy(`${POLICIES}.least_request`, `${POLICIES}.least_request.v3.LeastRequest`, {
          choice_count: { value: 2 },
        });
  const predictive = policy(PREDICTIVE_LB, 'xds.type.v3.TypedStruct', {
    type_url: `type.googleapis.com/${PREDICTIVE_LB}`,
    value: toStruct({
      pool: pool.key,
      policy: spec.balancing.policy,
      fallbackPolicy: spec.balancing.fallbackPolicy,
      exploration: spec.balancing.exploration,
    }),
  });
  const roundRobin = policy(`${POLICIES}.round_robin`, `${POLICIES}.round_robin.v3.RoundRobin`, {});
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    load_balancing_policy: { policies: [predictive, stock, roundRobin] },
    ...circuitBreakers(pool),
  };
}

/** max_requests when the pool sets no concurrency: no limit (Envoy's and gRPC's default is 1024). */
const UNLIMITED = 0xffffffff;

/**
 * Cluster circuit breakers: the concurrency ceiling (maxLimit per endpoint times the endpoints) as
 * max_requests, which grpc-go enforces too (gRFC A32), and the retry budget (Envoy only; with a
 * budget Envoy ignores max_retries).
 */
export function circuitBreakers(pool: XdsPoolInput): Msg {
  const { concurrency, retries } = pool.spec;
  const n = Math.max(1, pool.endpoints.filter((e) => e.ready).length);
  return {
    circuit_breakers: {
      thresholds: [
        {
          priority: 'DEFAULT',
          max_requests: { value: concurrency ? Math.min(UNLIMITED, concurrency.maxLimit * n) : UNLIMITED },
          max_pending_requests: { value: UNLIMITED },
          retry_budget: {
            budget_percent: { value: retries.budgetPercent },
            min_retry_concurrency: { value: 3 },
          },
        },
      ],
    },
  };
}
