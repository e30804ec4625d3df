import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { cachedCluster, routersCluster, routersLoadAssignment } from '../../../src/xds/cache-path.js';
import { envoyRoutes } from '../../../src/xds/envoy.js';
import { XdsResources } from '../../../src/xds/resources.js';
import { unpackAny, type AnyMessage } from '../../../src/xds/proto.js';
import type { Msg } from '../../../src/xds/routes.js';
import { TYPE, type XdsPoolInput } from '../../../src/xds/types.js';

const CHARGE = '/shop.Cart/Get';

function pool(key: string, match: XdsPoolInput['match'], cache?: XdsPoolInput['cache']): XdsPoolInput {
  return {
    key,
    match,
    spec: resolvePoolSpec({
      endpoints: [{ address: '10.0.0.1:8080' }],
      timeout: { default: '2s' },
      hedging: { enabled: true, delay: '20ms' },
      idempotentMethods: [CHARGE],
      concurrency: { minLimit: 2, maxLimit: 20 },
    }),
    endpoints: [{ address: '10.0.0.1:8080', ready: true, draining: false }],
    ...(cache ? { cache } : {}),
  };
}

const fleet = { name: 'edge', listen: '127.0.0.1:10000', namespace: '' };
const routesOf = (pools: XdsPoolInput[]) =>
  (envoyRoutes(fleet, pools).virtual_hosts as Msg[])[0]?.routes as Msg[];
const byPath = (routes: Msg[]) =>
  Object.fromEntries(routes.map((r) => [String((r.match as Msg).path ?? (r.match as Msg).prefix), r]));

describe('the cache path through routers behind Envoy', () => {
  const cached = pool(
    'shop/cart',
    { services: ['shop.Cart'], methods: [] },
    {
      methods: [CHARGE],
      routers: ['10.1.0.5:8080', '10.1.0.6:8080'],
    },
  );

  it("sends a tier's cacheable method to the aggregate cluster, unhedged, with no adaptive concurrency filter; the rest straight to the pool", () => {
    const r = byPath(routesOf([cached]));
    expect(r[CHARGE]?.route).toMatchObject({
      cluster: 'cart.shop/cached',
      timeout: { seconds: 2 },
      retry_policy: {
        retry_on: 'connect-failure,refused-stream',
        num_retries: { value: 2 },
        retry_priority: { name: 'envoy.retry_priorities.previous_priorities' },
      },
    });
    const priority = ((r[CHARGE]?.route as Msg).retry_policy as Msg).retry_priority as Msg;
    expect(unpackAny(priority.typed_config as AnyMessage)).toEqual({ update_frequency: 1 });
    expect((r[CHARGE]?.route as Msg).hedge_policy).toBeUndefined();
    const off = r[CHARGE]?.typed_per_filter_config as Record<string, AnyMessage>;
    expect(Object.keys(off)).toEqual(['sibyl.adaptive_concurrency.cart.shop']);
    expect(r['/shop.Cart/']?.route).toMatchObject({ cluster: 'cart.shop' });
    expect(r['/shop.Cart/']?.typed_per_filter_config).toBeUndefined();
  });

  it('a cacheable method another pool claims exactly goes to that pool, as the router sends it', () => {
    const other = pool('shop/a-get', { services: [], methods: [CHARGE] });
    const r = routesOf([cached, other]).filter((x) => (x.match as Msg).path === CHARGE);
    expect(r.map((x) => (x.route as Msg).cluster)).toEqual(['a-get.shop']);
  });

  it('the aggregate cluster fails over from the routers to the pool; the routers cluster ejects on local failures only', () => {
    const agg = cachedCluster(cached);
    expect(agg.lb_policy).toBe('CLUSTER_PROVIDED');
    const config = unpackAny((agg.cluster_type as Msg).typed_config as AnyMessage);
    expect(config.clusters).toEqual(['cart.shop/routers', 'cart.shop']);
    expect(routersCluster(cached)).toMatchObject({
      type: 'EDS',
      common_lb_config: { healthy_panic_threshold: { value: 0 } },
      outlier_detection: {
        split_external_local_origin_errors: true,
        consecutive_local_origin_failure: { value: 1 },
        enforcing_consecutive_5xx: { value: 0 },
        max_ejection_percent: { value: 100 },
      },
    });
    const cla = routersLoadAssignment(cached);
    expect(JSON.stringify(cla)).toContain('"port_value":8080');
    expect(routersLoadAssignment({ ...cached, cache: { methods: [CHARGE], routers: [] } }).endpoints).toEqual(
      [],
    );
  });

  it('the resources exist only for a pool with cacheable methods, and are the same pool to keyOf', () => {
    const r = new XdsResources();
    r.set('shop/cart', cached);
    r.set('shop/plain', pool('shop/plain', { services: ['shop.Plain'], methods: [] }));
    const envoy = r.all('envoy', fleet);
    expect([...(envoy.get(TYPE.cluster)?.keys() ?? [])].sort()).toEqual([
      'cart.shop',
      'cart.shop/cached',
      'cart.shop/routers',
      'plain.shop',
    ]);
    expect([...(envoy.get(TYPE.endpoint)?.keys() ?? [])].sort()).toEqual([
      'cart.shop',
      'cart.shop/routers',
      'plain.shop',
    ]);
    expect(r.keyOf('cart.shop/routers')).toBe('shop/cart');
    expect(r.pushed('shop/cart')?.cache?.routers).toHaveLength(2);
    expect(r.pushed('shop/plain')?.cache).toBeUndefined();
    // Proxyless clients call the backends themselves: nothing of the cache path.
    expect([...(r.all('proxyless').get(TYPE.cluster)?.keys() ?? [])].sort()).toEqual([
      'cart.shop',
      'plain.shop',
    ]);
    // A router leaving is a change that reaches Envoy.
    expect(r.set('shop/cart', { ...cached, cache: { methods: [CHARGE], routers: [] } }).changed).toBe(true);
  });
});
