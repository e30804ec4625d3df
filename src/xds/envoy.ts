import { parseListenAddress } from '../grpc/address.js';
import { packAny } from './proto.js';
import { circuitBreakers } from './proxyless.js';
import { duration, envoyAction, matchRoutes, type Msg } from './routes.js';
import { envoyListenerName, resourceName, type EnvoyFleet, type XdsPoolInput } from './types.js';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const ADAPTIVE = 'envoy.extensions.filters.http.adaptive_concurrency.v3.AdaptiveConcurrency';
const FILTER_CONFIG = 'envoy.config.route.v3.FilterConfig';
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const adaptiveFilterName = (pool: XdsPoolInput) => `sibyl.adaptive_concurrency.${resourceName(pool.key)}`;

/**
 * Envoy's adaptive concurrency (gradient controller: limit = gradient × limit + √limit, with
 * gradient = (minRTT + buffer) / sampleRTT, minRTT re-measured every interval) bounded by the spec.
 * The spec's bounds describe one endpoint; Envoy's limit covers the whole cluster, so they scale with
 * the ready endpoints. Envoy has no initial limit or latency target to set.
 */
function adaptiveConcurrency(pool: XdsPoolInput): Msg | undefined {
  const c = pool.spec.concurrency;
  if (!c) return undefined;
  const n = Math.max(1, pool.endpoints.filter((e) => e.ready).length);
  return {
    gradient_controller_config: {
      sample_aggregate_percentile: { value: 90 },
      concurrency_limit_params: {
        max_concurrency_limit: { value: c.maxLimit * n },
        concurrency_update_interval: duration(100),
      },
      min_rtt_calc_params: {
        interval: duration(30_000),
        request_count: { value: 50 },
        jitter: { value: 10 },
        min_concurrency: { value: c.minLimit * n },
        buffer: { value: 25 },
      },
    },
  };
}

/**
 * The pool's routes on an Envoy listener. Idempotent methods the pool serves get routes of their own
 * that hedge; a pool with a concurrency limit turns its adaptive concurrency filter on for its routes
 * (the filter sits in the chain disabled, one per such pool).
 */
function poolRoutes(pool: XdsPoolInput): { exact: Msg[]; prefix: Msg[] } {
  const { exact, prefix } = matchRoutes(pool);
  const hedging = pool.spec.hedging.enabled;
  const idempotent = new Set(hedging ? pool.spec.idempotentMethods : []);
  const services = new Set(pool.match.services);
  const extra = [...idempotent]
    .filter((m) => !pool.match.methods.includes(m) && services.has(m.split('/')[1] ?? ''))
    .map((m) => ({ path: m }));
  const enable = pool.spec.concurrency
    ? { typed_per_filter_config: { [adaptiveFilterName(pool)]: packAny(FILTER_CONFIG, {}) } }
    : {};
  const route = (match: Msg, hedged: boolean): Msg => ({
    name: `${pool.key} ${String(match.path ?? match.prefix)}`,
    match,
    route: envoyAction(pool, hedged),
    ...enable,
  });
  return {
    exact: [...exact, ...extra].map((m) => route(m, idempotent.has(String(m.path)))),
    prefix: prefix.map((m) => route(m, false)),
  };
}

/**
 * One listener per Envoy fleet, on the address its bootstrap names: an HttpConnectionManager routing
 * by gRPC method to each pool's cluster, every pool's exact methods before any service (the router's
 * order). A method or service two pools claim goes to the first by key.
 */
export function envoyListener(fleet: EnvoyFleet, pools: readonly XdsPoolInput[]): Msg {
  const sorted = [...pools].sort((a, b) => a.key.localeCompare(b.key));
  const parts = sorted.map(poolRoutes);
  const claimed = new Set<string>();
  const unclaimed = (r: Msg) => {
    const m = r.match as Msg;
    const key = String(m.path ?? m.prefix);
    if (claimed.has(key)) return false;
    claimed.add(key);
    return true;
  };
  const routes = [...parts.flatMap((p) => p.exact), ...parts.flatMap((p) => p.prefix)].filter(unclaimed);
  const filters = sorted.flatMap((p) => {
    const config = adaptiveConcurrency(p);
    return config
      ? [{ name: adaptiveFilterName(p), typed_config: packAny(ADAPTIVE, config), disabled: true }]
      : [];
  });
  const name = envoyListenerName(fleet.name);
  const hcm = {
    stat_prefix: 'sibyl',
    codec_type: 'AUTO',
    route_config: { name, virtual_hosts: [{ name: 'grpc', domains: ['*'], routes }] },
    http_filters: [...filters, { name: 'envoy.filters.http.router', typed_config: packAny(ROUTER, {}) }],
  };
  const { host, port } = parseListenAddress(fleet.listen, 'node metadata sibyl.dev/listen');
  return {
    name,
    address: { socket_address: { address: host, port_value: port } },
    filter_chains: [
      {
        filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny(HCM, hcm) }],
      },
    ],
  };
}

/**
 * The pool's cluster for Envoy: EDS over ADS, HTTP/2 upstream (gRPC), LEAST_REQUEST, which with
 * unequal weights picks by weight / (active requests + 1) and so follows sibyl's weights while still
 * seeing queues; outlier detection for the spec's breaker (Envoy counts a gRPC failure by the HTTP
 * status its grpc-status maps to, so consecutive_5xx sees UNAVAILABLE and INTERNAL); the panic
 * threshold at the share of endpoints the breaker may not eject, so Envoy goes on using ejected or
 * draining endpoints only when more than maxEjectionPercent are out.
 */
export function envoyCluster(pool: XdsPoolInput): Msg {
  const name = resourceName(pool.key);
  const cb = pool.spec.circuitBreaker;
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    connect_timeout: duration(2000),
    lb_policy: 'LEAST_REQUEST',
    least_request_lb_config: { choice_count: { value: 2 } },
    common_lb_config: { healthy_panic_threshold: { value: 100 - cb.maxEjectionPercent } },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': packAny(HTTP_OPTIONS, {
        explicit_http_config: { http2_protocol_options: {} },
      }),
    },
    outlier_detection: {
      consecutive_5xx: { value: cb.failureThreshold },
      consecutive_gateway_failure: { value: cb.failureThreshold },
      enforcing_consecutive_gateway_failure: { value: 100 },
      interval: duration(1000),
      base_ejection_time: duration(cb.recoveryTimeoutMs),
      max_ejection_percent: { value: cb.maxEjectionPercent },
    },
    ...circuitBreakers(pool),
  };
}
