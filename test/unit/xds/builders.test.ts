import { resolvePoolSpec } from '../../../src/api/resolve.js';
import type { BackendPoolSpec } from '../../../src/api/backendpool.js';
import { clusterLoadAssignment } from '../../../src/xds/endpoints.js';
import { envoyCluster, envoyListener, envoyRoutes } from '../../../src/xds/envoy.js';
import { unpackAny, type AnyMessage } from '../../../src/xds/proto.js';
import { proxylessCluster, proxylessListener, stockPolicy } from '../../../src/xds/proxyless.js';
import type { Msg } from '../../../src/xds/routes.js';
import type { EnvoyFleet, XdsEndpointInput, XdsPoolInput } from '../../../src/xds/types.js';

type Any = Record<string, unknown>;
const get = (o: unknown, path: string): Any => {
  let v: unknown = o;
  for (const k of path.split('.')) v = (v as Any)[/^\d+$/.test(k) ? Number(k) : k];
  return v as Any;
};
const unpack = (o: unknown) => unpackAny(o as AnyMessage);

function pool(
  spec: Partial<BackendPoolSpec> = {},
  eps?: Partial<XdsEndpointInput>[],
  extra: Partial<XdsPoolInput> = {},
) {
  const endpoints = (eps ?? [{}, {}]).map((e, i) => ({
    address: `10.0.0.${i + 1}:8080`,
    ready: true,
    draining: false,
    ...e,
  }));
  return {
    key: 'shop/cart',
    match: { services: spec.match?.services ?? ['shop.Cart'], methods: spec.match?.methods ?? [] },
    spec: resolvePoolSpec({ endpoints: endpoints.map((e) => ({ address: e.address })), ...spec }),
    endpoints,
    ...extra,
  } satisfies XdsPoolInput;
}

describe('proxyless resources', () => {
  it('a Listener NAME.NAMESPACE: api_listener, inline routes, exact methods first, the router filter last', () => {
    const l = proxylessListener(
      pool({ match: { services: ['shop.Cart'], methods: ['/shop.Pay/Charge'] }, timeout: { default: '2s' } }),
    );
    expect(l.name).toBe('cart.shop');
    const hcm = unpack(get(l, 'api_listener.api_listener'));
    const routes = get(hcm, 'route_config.virtual_hosts.0.routes') as unknown as Msg[];
    expect(routes.map((r) => r.match)).toEqual([{ path: '/shop.Pay/Charge' }, { prefix: '/shop.Cart/' }]);
    expect(get(routes[0], 'route')).toMatchObject({
      cluster: 'cart.shop',
      max_stream_duration: { max_stream_duration: { seconds: 2 } },
      retry_policy: { retry_on: 'unavailable', num_retries: { value: 1 } },
    });
    const filters = get(hcm, 'http_filters') as unknown as Msg[];
    expect(filters.at(-1)?.name).toBe('envoy.filters.http.router');
  });

  it('retries only on the gRPC statuses data planes know, and not at all with one attempt', () => {
    const on = pool({ retries: { retryOn: ['unknown', 'aborted', 'internal'], maxAttempts: 3 } });
    expect(
      get(
        unpack(get(proxylessListener(on), 'api_listener.api_listener')),
        'route_config.virtual_hosts.0.routes.0.route.retry_policy',
      ),
    ).toMatchObject({ retry_on: 'internal', num_retries: { value: 2 } });
    const none = pool({ retries: { maxAttempts: 1 } });
    expect(
      get(
        unpack(get(proxylessListener(none), 'api_listener.api_listener')),
        'route_config.virtual_hosts.0.routes.0.route',
      ),
    ).not.toHaveProperty('retry_policy');
  });

  it('a Cluster with the policy list [sibyl.PredictiveLb, stock, round_robin]', () => {
    const c = proxylessCluster(pool());
    expect(c).toMatchObject({
      name: 'cart.shop',
      type: 'EDS',
      eds_cluster_config: { service_name: 'cart.shop' },
    });
    const policies = get(c, 'load_balancing_policy.policies') as unknown as Msg[];
    const urls = policies.map((p) => get(p, 'typed_extension_config.typed_config').type_url);
    expect(urls).toEqual([
      'type.googleapis.com/xds.type.v3.TypedStruct',
      'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest',
      'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
    ]);
    const ts = unpack(get(policies[0], 'typed_extension_config.typed_config'));
    expect(ts.type_url).toBe('type.googleapis.com/sibyl.PredictiveLb');
    expect(get(ts, 'value.fields.pool')).toEqual({ stringValue: 'shop/cart' });
    expect(get(ts, 'value.fields.policy')).toEqual({ stringValue: 'Predictive' });
  });

  it('weights open loop (ring_hash) only well below the capacity the predictions give', () => {
    const eps = [{ predictedServiceMs: 10 }, { predictedServiceMs: 20 }]; // 100 + 50 calls/s
    expect(stockPolicy(pool({}, eps, { offeredCallsPerSec: 70 }))).toBe('ring_hash');
    expect(stockPolicy(pool({}, eps, { offeredCallsPerSec: 80 }))).toBe('least_request');
    expect(stockPolicy(pool({}, eps))).toBe('least_request'); // load unknown
    expect(stockPolicy(pool({}, [{}, {}], { offeredCallsPerSec: 1 }))).toBe('least_request'); // no predictions
    const c = proxylessCluster(pool({}, eps, { offeredCallsPerSec: 10 }));
    const rh = get(c, 'load_balancing_policy.policies.1.typed_extension_config.typed_config');
    expect(unpack(rh)).toMatchObject({ hash_function: 'XX_HASH', minimum_ring_size: { value: 1024 } });
  });

  it('circuit breakers: the concurrency ceiling over the ready endpoints, else no limit; the retry budget', () => {
    const limited = proxylessCluster(pool({ concurrency: { maxLimit: 50 } }, [{}, {}, { ready: false }]));
    expect(get(limited, 'circuit_breakers.thresholds.0')).toMatchObject({
      max_requests: { value: 100 },
      retry_budget: { budget_percent: { value: 20 } },
    });
    expect(get(proxylessCluster(pool()), 'circuit_breakers.thresholds.0.max_requests')).toEqual({
      value: 0xffffffff,
    });
  });
});

describe('ClusterLoadAssignment', () => {
  it('one locality of weight 1; weights at least 1; DRAINING for an open breaker; UNHEALTHY when not ready', () => {
    const p = pool({}, [{}, { draining: true }, { ready: false }, { address: '10.0.0.1:8080' }]);
    const cla = clusterLoadAssignment(
      p,
      new Map([
        ['10.0.0.1:8080', 40],
        ['10.0.0.2:8080', 0],
      ]),
    );
    expect(cla.cluster_name).toBe('cart.shop');
    const loc = get(cla, 'endpoints.0');
    expect(loc.load_balancing_weight).toEqual({ value: 1 });
    expect(
      (loc.lb_endpoints as unknown as Msg[]).map((e) => [
        get(e, 'endpoint.address.socket_address'),
        e.health_status,
        e.load_balancing_weight,
      ]),
    ).toEqual([
      [{ address: '10.0.0.1', port_value: 8080 }, 'HEALTHY', { value: 40 }],
      [{ address: '10.0.0.2', port_value: 8080 }, 'DRAINING', { value: 1 }],
      [{ address: '10.0.0.3', port_value: 8080 }, 'UNHEALTHY', { value: 1 }],
    ]); // the duplicate address is left out: grpc-go refuses duplicates
    expect(clusterLoadAssignment(pool({}, []), new Map()).endpoints).toEqual([]);
  });

  it('sends a loopback backend listed by name (b1.localhost, an FQDN EndpointSlice) as 127.0.0.1: xDS takes IPs only', () => {
    const cla = clusterLoadAssignment(
      pool({}, [{ address: 'b1.localhost:9001' }]),
      new Map([['b1.localhost:9001', 7]]),
    );
    const ep = get(cla, 'endpoints.0.lb_endpoints.0');
    expect(get(ep, 'endpoint.address.socket_address')).toEqual({ address: '127.0.0.1', port_value: 9001 });
    expect(ep.load_balancing_weight).toEqual({ value: 7 });
  });
});

describe('Envoy resources', () => {
  const fleet = { name: 'edge', listen: '0.0.0.0:8080', namespace: '' };
  const a = { ...pool({ match: { services: ['a.A'], methods: ['/b.B/Get'] } }), key: 'ns/a' };
  const b = { ...pool({ match: { services: ['b.B', 'a.A'] } }), key: 'ns/b' };

  it('one listener per fleet on its address: every exact method before any service, first pool by key wins', () => {
    const l = envoyListener(fleet, [b, a]);
    expect(l).toMatchObject({
      name: 'sibyl-envoy.edge',
      address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
    });
    // Routes by RDS, so a change reaches connections already open.
    expect(get(unpack(get(l, 'filter_chains.0.filters.0.typed_config')), 'rds')).toEqual({
      config_source: { ads: {}, resource_api_version: 'V3' },
      route_config_name: 'sibyl-envoy.edge',
    });
    const rc = envoyRoutes(fleet, [b, a]);
    expect(rc.name).toBe('sibyl-envoy.edge');
    const routes = get(rc, 'virtual_hosts.0.routes') as unknown as Msg[];
    expect(routes.map((r) => [r.match, get(r, 'route')?.cluster])).toEqual([
      [{ path: '/b.B/Get' }, 'a.ns'],
      [{ prefix: '/a.A/' }, 'a.ns'],
      [{ prefix: '/b.B/' }, 'b.ns'],
      [{ prefix: '/' }, undefined],
    ]);
    // Calls without grpc-timeout get the spec's timeout (none: 0, no limit); the caller's deadline passes through.
    expect(get(routes[0], 'route')).toMatchObject({
      timeout: {},
      max_stream_duration: { grpc_timeout_header_max: {} },
    });
  });

  it("logs every upstream attempt to the operator over gRPC ALS, on the Envoy's own channel, when it takes them", () => {
    const router = (f: EnvoyFleet) => {
      const hcm = unpack(get(envoyListener(f, [a]), 'filter_chains.0.filters.0.typed_config'));
      const filters = get(hcm, 'http_filters') as unknown as Msg[];
      return unpack(get(filters.at(-1), 'typed_config'));
    };
    expect(router(fleet)).toEqual({});
    const logged = router({
      ...fleet,
      accessLogs: { server: 'op:9443', caFile: '/ca.crt', tokenFile: '/token' },
    });
    const log = get(logged, 'upstream_log.0');
    expect(log.name).toBe('envoy.access_loggers.http_grpc');
    const config = unpack(get(log, 'typed_config'));
    expect(config).toMatchObject({
      common_config: {
        log_name: 'sibyl.upstream',
        transport_api_version: 'V3',
        grpc_service: {
          google_grpc: {
            target_uri: 'op:9443',
            channel_credentials: { ssl_credentials: { root_certs: { filename: '/ca.crt' } } },
            credentials_factory_name: 'envoy.grpc_credentials.file_based_metadata',
          },
        },
      },
      additional_response_headers_to_log: ['grpc-status'],
      additional_response_trailers_to_log: ['grpc-status'],
    });
    const plugin = get(config, 'common_config.grpc_service.google_grpc.call_credentials.0.from_plugin');
    expect(unpack(plugin.typed_config)).toEqual({
      secret_data: { filename: '/token' },
      header_key: 'authorization',
      header_prefix: 'Bearer ',
    });
    const plain = unpack(
      get(router({ ...fleet, accessLogs: { server: 'op:9443' } }), 'upstream_log.0.typed_config'),
    );
    expect(get(plain, 'common_config.grpc_service.google_grpc')).toEqual({
      target_uri: 'op:9443',
      stat_prefix: 'sibyl_als',
    });
  });

  it('hedges idempotent methods on a per-try timeout, on routes of their own', () => {
    const h = pool({
      match: { services: ['a.A'] },
      idempotentMethods: ['/a.A/Get'],
      hedging: { enabled: true, delay: '30ms' },
      retries: { maxAttempts: 1 },
    });
    const routes = get(envoyRoutes(fleet, [h]), 'virtual_hosts.0.routes') as unknown as Msg[];
    expect(routes.map((r) => r.match)).toEqual([{ path: '/a.A/Get' }, { prefix: '/a.A/' }, { prefix: '/' }]);
    expect(get(routes[0], 'route')).toMatchObject({
      hedge_policy: { hedge_on_per_try_timeout: true },
      retry_policy: { per_try_timeout: { nanos: 30_000_000 }, num_retries: { value: 1 } },
    });
    expect(get(routes[1], 'route')).not.toHaveProperty('hedge_policy');
    expect(get(routes[1], 'route')).not.toHaveProperty('retry_policy');
  });

  it('programs predicted deadlines as per_try_timeout on exact routes; retries a cut try only for idempotent methods', () => {
    const d = pool(
      {
        match: { services: ['a.A'], methods: ['/b.B/Put'] },
        idempotentMethods: ['/a.A/Get'],
        timeout: { default: '5s', predicted: { multiplier: 2, floor: '10ms' } },
      },
      undefined,
      {
        deadlines: [
          { method: '/a.A/Get', perTryTimeoutMs: 120 },
          { method: '/a.A/Write', perTryTimeoutMs: 45 },
          { method: '/b.B/Put', perTryTimeoutMs: 1500 },
          { method: '/other.O/Get', perTryTimeoutMs: 9 }, // not the pool's: no route
        ],
      },
    );
    const routes = get(envoyRoutes(fleet, [d]), 'virtual_hosts.0.routes') as unknown as Msg[];
    const byPath = new Map(routes.map((r) => [String((r.match as Msg).path ?? (r.match as Msg).prefix), r]));
    // exact routes before the service's prefix, which keeps no per-try timeout
    expect(routes.map((r) => r.match).slice(-2)).toEqual([{ prefix: '/a.A/' }, { prefix: '/' }]);
    expect([...byPath.keys()].sort()).toEqual(['/', '/a.A/', '/a.A/Get', '/a.A/Write', '/b.B/Put'].sort());
    // idempotent: a cut try is retried on another host (gateway-error covers Envoy's per-try timeout)
    expect(get(byPath.get('/a.A/Get'), 'route')).toMatchObject({
      timeout: { seconds: 5 },
      retry_policy: {
        retry_on: 'unavailable,gateway-error,reset',
        num_retries: { value: 1 },
        per_try_timeout: { seconds: 0, nanos: 120_000_000 },
      },
    });
    expect(get(byPath.get('/a.A/Get'), 'route')).not.toHaveProperty('hedge_policy');
    // not idempotent: the try is cut, and only the spec's gRPC statuses are retried
    expect(get(byPath.get('/a.A/Write'), 'route.retry_policy')).toMatchObject({
      retry_on: 'unavailable',
      per_try_timeout: { nanos: 45_000_000 },
    });
    expect(get(byPath.get('/b.B/Put'), 'route.retry_policy')).toMatchObject({
      retry_on: 'unavailable',
      per_try_timeout: { seconds: 1, nanos: 500_000_000 },
    });
    // hedged: the hedge delay stays the per-try timeout
    const hedged = pool(
      {
        match: { services: ['a.A'] },
        idempotentMethods: ['/a.A/Get'],
        hedging: { enabled: true, delay: '30ms' },
      },
      undefined,
      { deadlines: [{ method: '/a.A/Get', perTryTimeoutMs: 80 }] },
    );
    expect(get(envoyRoutes(fleet, [hedged]), 'virtual_hosts.0.routes.0.route')).toMatchObject({
      hedge_policy: { hedge_on_per_try_timeout: true },
      retry_policy: { per_try_timeout: { nanos: 30_000_000 } },
    });
    expect(get(byPath.get('/a.A/'), 'route.retry_policy')).not.toHaveProperty('per_try_timeout');
    // a pool without retries still cuts tries, and retries an idempotent one once
    const once = pool(
      { match: { services: ['a.A'] }, idempotentMethods: ['/a.A/Get'], retries: { maxAttempts: 1 } },
      undefined,
      {
        deadlines: [
          { method: '/a.A/Get', perTryTimeoutMs: 50 },
          { method: '/a.A/Set', perTryTimeoutMs: 50 },
        ],
      },
    );
    const r1 = get(envoyRoutes(fleet, [once]), 'virtual_hosts.0.routes') as unknown as Msg[];
    expect(r1.map((r) => get(r, 'route')?.retry_policy)).toMatchObject([
      {
        retry_on: 'unavailable,gateway-error,reset',
        num_retries: { value: 1 },
        per_try_timeout: { nanos: 50_000_000 },
      },
      { retry_on: 'unavailable', num_retries: { value: 0 }, per_try_timeout: { nanos: 50_000_000 } },
      undefined,
      undefined,
    ]);
    // proxyless clients have no per-try timeout in xDS (gRFC A44): their routes do not change
    const l = get(unpack(get(proxylessListener(d), 'api_listener.api_listener')), 'route_config');
    expect(JSON.stringify(l)).not.toContain('per_try_timeout');
  });

  it('a pool with a concurrency limit has its own adaptive concurrency filter, turned off on other routes', () => {
    const c = {
      ...pool({ match: { services: ['c.C'] }, concurrency: { minLimit: 2, maxLimit: 40 } }),
      key: 'ns/c',
    };
    const hcm = unpack(get(envoyListener(fleet, [a, c]), 'filter_chains.0.filters.0.typed_config'));
    const filters = get(hcm, 'http_filters') as unknown as Msg[];
    expect(filters.map((f) => f.name)).toEqual([
      'sibyl.adaptive_concurrency.c.ns',
      'envoy.filters.http.router',
    ]);
    expect(get(unpack(filters[0]?.typed_config), 'gradient_controller_config')).toMatchObject({
      concurrency_limit_params: { max_concurrency_limit: { value: 80 } },
      min_rtt_calc_params: { min_concurrency: { value: 4 } },
    });
    // Three ready endpoints count as four: one pod more or less seldom rewrites the listener.
    const c3 = { ...c, endpoints: [...c.endpoints, { ...c.endpoints[0]!, address: '10.0.0.9:8080' }] };
    const f3 = get(
      unpack(get(envoyListener(fleet, [c3]), 'filter_chains.0.filters.0.typed_config')),
      'http_filters.0',
    );
    expect(get(unpack(f3.typed_config), 'gradient_controller_config.concurrency_limit_params')).toMatchObject(
      {
        max_concurrency_limit: { value: 160 },
      },
    );
    const routes = get(envoyRoutes(fleet, [a, c]), 'virtual_hosts.0.routes') as unknown as Msg[];
    const offOn = (r: Msg | undefined) =>
      Object.entries((r?.typed_per_filter_config ?? {}) as Record<string, AnyMessage>).map(([n, v]) => [
        n,
        unpack(v),
      ]);
    expect(offOn(routes.find((r) => get(r, 'route')?.cluster === 'c.ns'))).toEqual([]);
    expect(offOn(routes.find((r) => get(r, 'route')?.cluster === 'a.ns'))).toEqual([
      ['sibyl.adaptive_concurrency.c.ns', { disabled: true }],
    ]);
    // Calls no pool takes: 404, unsampled.
    expect(routes.at(-1)).toMatchObject({ match: { prefix: '/' }, direct_response: { status: 404 } });
    expect(offOn(routes.at(-1))).toEqual([['sibyl.adaptive_concurrency.c.ns', { disabled: true }]]);
  });

  it('a cluster: LEAST_REQUEST over HTTP/2, outlier detection from the breaker, panic only past maxEjectionPercent', () => {
    const c = envoyCluster(
      pool({ circuitBreaker: { failureThreshold: 3, recoveryTimeout: '10s', maxEjectionPercent: 30 } }),
    );
    expect(c).toMatchObject({
      name: 'cart.shop',
      lb_policy: 'LEAST_REQUEST',
      common_lb_config: { healthy_panic_threshold: { value: 70 } },
      outlier_detection: {
        consecutive_5xx: { value: 3 },
        base_ejection_time: { seconds: 10 },
        max_ejection_percent: { value: 30 },
      },
    });
    const opts = get(c, 'typed_extension_protocol_options')[
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
    ];
    expect(unpack(opts)).toEqual({ explicit_http_config: { http2_protocol_options: {} } });
  });
});
