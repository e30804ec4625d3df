import { parseListenAddress } from '../grpc/address.js';
import { upstreamAccessLog } from './access-log-config.js';
import { cachedAction, cacheableMethods } from './cache-path.js';
import { packAny, type AnyMessage } from './proto.js';
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
  // The filter lives in the listener, and Envoy applies a changed listener to new connections only
  // (old ones drain): the endpoint count is rounded up to a power of two so that scaling by one pod
  // seldom rewrites it.
  const ready = Math.max(1, pool.endpoints.filter((e) => e.ready).length);
  const n = 2 ** Math.ceil(Math.log2(ready));
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
 * `typed_per_filter_config` turning off these adaptive concurrency filters on a route. Envoy can turn
 * a filter off per route with an empty FilterConfig, but turning one on per route needs a per-route
 * config the adaptive concurrency filter does not have ("Empty route/virtual host per filter
 * configuration", Envoy 1.40): so every pool's filter is on in the chain and off on every other
 * pool's routes.
 */
function disable(names: readonly string[]): Msg {
  if (names.length === 0) return {};
  const off = packAny(FILTER_CONFIG, { disabled: true });
  return { typed_per_filter_config: Object.fromEntries(names.map((n) => [n, off])) };
}

/**
 * The pool's routes on an Envoy listener. Idempotent methods it serves get hedged routes of their
 * own, methods with a predicted deadline routes with that per_try_timeout (routes.ts envoyAction), and
 * cacheable methods routes through the routers (cache-path.ts, which keep the routers' own deadlines);
 * a method it serves by its service gets such a route only when no pool claims that method exactly
 * (`exactlyClaimed`), since the router would send it to that pool.
 */
function poolRoutes(
  pool: XdsPoolInput,
  adaptive: readonly string[],
  exactlyClaimed: ReadonlySet<string>,
): { exact: Msg[]; prefix: Msg[] } {
  const { exact, prefix } = matchRoutes(pool);
  const hedging = pool.spec.hedging.enabled;
  const idempotent = new Set(pool.spec.idempotentMethods);
  const hedged = new Set(hedging ? pool.spec.idempotentMethods : []);
  const cached = new Set(cacheableMethods(pool));
  const deadlines = new Map((pool.deadlines ?? []).map((d) => [d.method, d.perTryTimeoutMs]));
  const services = new Set(pool.match.services);
  const extra = [...new Set([...hedged, ...cached, ...deadlines.keys()])]
    .filter((m) => !exactlyClaimed.has(m) && services.has(m.split('/')[1] ?? ''))
    .map((m) => ({ path: m }));
  const others = disable(adaptive.filter((n) => n !== adaptiveFilterName(pool)));
  // A cache hit's quick answer would lower the pool's minimum RTT, so no adaptive concurrency filter
  // samples a cacheable method's route: the router limits its misses' concurrency itself.
  const route = (match: Msg, action: Msg, filters = others): Msg => ({
    name: `${pool.key} ${String(match.path ?? match.prefix)}`,
    match,
    route: action,
    ...filters,
  });
  const exactRoute = (m: Msg) => {
    const path = String(m.path);
    const timeoutMs = deadlines.get(path);
    const perTry = timeoutMs !== undefined ? { timeoutMs, idempotent: idempotent.has(path) } : undefined;
    return cached.has(path)
      ? route(m, cachedAction(pool), disable(adaptive))
      : route(m, envoyAction(pool, hedged.has(path), perTry));
  };
  return {
    exact: [...exact, ...extra].map(exactRoute),
    prefix: prefix.map((m) => route(m, envoyAction(pool, false))),
  };
}

/** The pools' adaptive concurrency filters, one per pool with a concurrency limit, by key order. */
function adaptiveFilters(sorted: readonly XdsPoolInput[]): { name: string; typed_config: AnyMessage }[] {
  return sorted.flatMap((p) => {
    const config = adaptiveConcurrency(p);
    return config ? [{ name: adaptiveFilterName(p), typed_config: packAny(ADAPTIVE, config) }] : [];
  });
}

const byKey = (pools: readonly XdsPoolInput[]) => [...pools].sort((a, b) => a.key.localeCompare(b.key));

/**
 * The fleet's routes (RDS, so a change reaches connections already open: a listener's inline routes
 * would reach only new ones, old connections keeping the old listener until drained): by gRPC method
 * to each pool's cluster, every pool's exact methods before any service (the router's order). A
 * method or service two pools claim goes to the first by key. A call no pool matches ends in a 404
 * (UNIMPLEMENTED to a gRPC client) that no adaptive concurrency filter samples, so its quick answer
 * does not lower any pool's minimum RTT.
 */
export function envoyRoutes(fleet: EnvoyFleet, pools: readonly XdsPoolInput[]): Msg {
  const sorted = byKey(pools);
  const adaptive = adaptiveFilters(sorted).map((f) => f.name);
  const exactlyClaimed = new Set(sorted.flatMap((p) => p.match.methods));
  const parts = sorted.map((p) => poolRoutes(p, adaptive, exactlyClaimed));
  const claimed = new Set<string>();
  const unclaimed = (r: Msg) => {
    const m = r.match as Msg;
    const key = String(m.path ?? m.prefix);
    if (claimed.has(key)) return false;
    claimed.add(key);
    return true;
  };
  const routes = [
    ...[...parts.flatMap((p) => p.exact), ...parts.flatMap((p) => p.prefix)].filter(unclaimed),
    { name: 'no pool', match: { prefix: '/' }, direct_response: { status: 404 }, ...disable(adaptive) },
  ];
  return { name: envoyListenerName(fleet.name), virtual_hosts: [{ name: 'grpc', domains: ['*'], routes }] };
}

/**
 * One listener per Envoy fleet, on the address its bootstrap names: an HttpConnectionManager with the
 * pools' adaptive concurrency filters and the router, taking its routes by RDS (envoyRoutes). When the
 * operator takes access logs, the router logs every upstream attempt to it (access-log-config.ts).
 */
export function envoyListener(fleet: EnvoyFleet, pools: readonly XdsPoolInput[]): Msg {
  const name = envoyListenerName(fleet.name);
  const hcm = {
    stat_prefix: 'sibyl',
    codec_type: 'AUTO',
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: name },
    http_filters: [
      ...adaptiveFilters(byKey(pools)),
      {
        name: 'envoy.filters.http.router',
        typed_config: packAny(ROUTER, fleet.accessLogs ? upstreamAccessLog(fleet.accessLogs) : {}),
      },
    ],
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
 * draining endpoints only when more than maxEjectionPercent are out. Its statistics go by a name
 * without dots (alt_stat_name): Envoy's Prometheus tags take a cluster's name up to its first dot, so
 * NAME.NAMESPACE would put the namespace into every metric's name.
 */
export function envoyCluster(pool: XdsPoolInput): Msg {
  const name = resourceName(pool.key);
  const cb = pool.spec.circuitBreaker;
  return {
    name,
    alt_stat_name: `sibyl_${pool.key.replace(/[./]/g, '_')}`,
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
