import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { XdsResources } from '../../../src/xds/resources.js';
import { TYPE, type XdsPoolInput } from '../../../src/xds/types.js';

const fleet = { name: 'edge', listen: '0.0.0.0:8080', namespace: '' };

function pool(ms: number[], extra: Partial<XdsPoolInput> = {}, hedging = false): XdsPoolInput {
  const endpoints = ms.map((m, i) => ({
    address: `10.0.0.${i + 1}:80`,
    ready: true,
    draining: false,
    predictedServiceMs: m,
  }));
  return {
    key: 'ns/p',
    match: { services: ['a.A'], methods: [] },
    spec: resolvePoolSpec({
      endpoints: endpoints.map((e) => ({ address: e.address })),
      ...(hedging ? { hedging: { enabled: true }, idempotentMethods: ['/a.A/Get'] } : {}),
    }),
    endpoints,
    ...extra,
  };
}

describe('XdsResources', () => {
  it('classifies changes as the control stream does: weights wait, breakers, removals and new pools go at once', () => {
    const r = new XdsResources();
    expect(r.set('ns/p', pool([10, 10]))).toEqual({ changed: true, urgent: true });
    expect(r.set('ns/p', pool([10, 10]))).toEqual({ changed: false, urgent: false });
    expect(r.set('ns/p', pool([5, 10]))).toEqual({ changed: true, urgent: false });
    const p = pool([5, 10]);
    expect(
      r.set('ns/p', { ...p, endpoints: [{ ...p.endpoints[0]!, draining: true }, p.endpoints[1]!] }),
    ).toEqual({
      changed: true,
      urgent: true,
    });
    expect(r.set('ns/p', pool([5]))).toMatchObject({ urgent: true });
    expect(r.set('ns/p', undefined)).toEqual({ changed: true, urgent: true });
    expect(r.set('ns/p', undefined)).toEqual({ changed: false, urgent: false });
  });

  it("rebuilds an Envoy fleet's routes when only they change (a predicted hedge delay under the weights' hysteresis)", () => {
    const r = new XdsResources();
    r.set('ns/p', pool([10, 20], {}, true));
    const before = r.all('envoy', fleet).get(TYPE.route)?.get('sibyl-envoy.edge')?.hash;
    const eds = r.all('envoy', fleet).get(TYPE.endpoint)?.get('p.ns')?.hash;
    r.set('ns/p', pool([10, 22], {}, true)); // weight 50 → 45.5: held; hedge delay 20 → 22 ms
    expect(r.all('envoy', fleet).get(TYPE.endpoint)?.get('p.ns')?.hash).toBe(eds);
    expect(r.all('envoy', fleet).get(TYPE.route)?.get('sibyl-envoy.edge')?.hash).not.toBe(before);
  });

  it("keeps an Envoy fleet to its namespace's pools, and proxyless clients to pools' own resources", () => {
    const r = new XdsResources();
    r.set('ns/p', pool([10]));
    r.set('other/q', { ...pool([10]), key: 'other/q' });
    const names = (m: ReadonlyMap<string, unknown> | undefined) => [...(m?.keys() ?? [])].sort();
    expect(names(r.all('envoy', { ...fleet, namespace: 'ns' }).get(TYPE.cluster))).toEqual(['p.ns']);
    expect(names(r.all('envoy', fleet).get(TYPE.cluster))).toEqual(['p.ns', 'q.other']);
    expect(names(r.all('proxyless').get(TYPE.listener))).toEqual(['p.ns', 'q.other']);
    expect(r.all('proxyless').get(TYPE.route)?.size).toBe(0);
    expect(r.keyOf('q.other')).toBe('other/q');
  });

  it('answers all() from one set per view while nothing changes, and a new one after a change or a removal', () => {
    const r = new XdsResources();
    r.set('ns/p', pool([10, 10]));
    const first = r.all('proxyless');
    expect(r.all('proxyless')).toBe(first);
    expect(r.all('envoy', fleet)).not.toBe(first);
    r.set('ns/p', pool([10, 10])); // the same: no change, the same set
    expect(r.all('proxyless')).toBe(first);
    const eds = first.get(TYPE.endpoint)?.get('p.ns')?.hash;
    const p = pool([10, 10]);
    r.set('ns/p', { ...p, endpoints: [{ ...p.endpoints[0]!, ready: false }, p.endpoints[1]!] });
    expect(r.all('proxyless').get(TYPE.endpoint)?.get('p.ns')?.hash).not.toBe(eds);
    r.set('ns/p', undefined);
    expect(r.all('proxyless').get(TYPE.endpoint)?.size).toBe(0);
  });

  it("locates an access log entry: the cluster to its pool, the upstream address to the pool's endpoint", () => {
    const r = new XdsResources();
    r.set('ns/p', pool([10, 20]));
    r.set('ns/v6', {
      ...pool([10]),
      key: 'ns/v6',
      endpoints: [{ address: '[::1]:81', ready: true, draining: false }],
    });
    expect(r.locate('p.ns', '10.0.0.2', 80)).toEqual({ pool: 'ns/p', address: '10.0.0.2:80' });
    expect(r.locate('v6.ns', '::1', 81)).toEqual({ pool: 'ns/v6', address: '[::1]:81' });
    // A loopback backend listed by name (an FQDN EndpointSlice) is sent, and logged, as 127.0.0.1.
    r.set('ns/named', {
      ...pool([10]),
      key: 'ns/named',
      endpoints: [{ address: 'b1.localhost:82', ready: true, draining: false }],
    });
    expect(r.locate('named.ns', '127.0.0.1', 82)).toEqual({ pool: 'ns/named', address: 'b1.localhost:82' });
    expect(r.locate('p.ns', '10.0.0.9', 80)).toBeUndefined(); // not an endpoint of the pool
    expect(r.locate('other.ns', '10.0.0.1', 80)).toBeUndefined();
    r.set('ns/p', undefined);
    expect(r.locate('p.ns', '10.0.0.2', 80)).toBeUndefined();
  });
});
