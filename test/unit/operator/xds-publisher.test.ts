import { resolvePoolSpec } from '../../../src/api/resolve.js';
import type { PoolObject } from '../../../src/operator/context.js';
import type { AssessedEndpoint, PoolView } from '../../../src/operator/pool-view.js';
import { XdsPublisher, serviceTimeMs, xdsCache, xdsPoolInput } from '../../../src/operator/xds-publisher.js';
import type { EndpointView } from '../../../src/telemetry/fleet.js';
import { systemClock } from '../../../src/util/clock.js';
import { makeLogger } from '../../../src/util/log.js';
import { systemTimers } from '../../../src/util/timers.js';
import { XdsServer } from '../../../src/xds/server.js';
import type { XdsPoolInput } from '../../../src/xds/types.js';

const ev = (over: Partial<EndpointView> = {}): EndpointView => ({
  calls: 300,
  failures: 0,
  errorRate: 0,
  inflight: 1,
  routers: 2,
  failingRouters: 0,
  openBreakers: 0,
  ageMs: 100,
  ...over,
});

const spec = {
  service: { name: 's' },
  match: { services: ['sibyl.demo.v1.Demo'], methods: ['/x.Y/Z'] },
};
const pool = { metadata: { name: 'p', namespace: 'ns' }, spec } as unknown as PoolObject;

function viewOf(endpoints: Array<Partial<AssessedEndpoint> & { address: string }>): PoolView {
  const assessed = endpoints.map(({ address, ...a }): AssessedEndpoint => ({
    endpoint: { address, ready: true },
    forceOpen: false,
    breaker: 'Closed',
    ...a,
  }));
  return {
    key: 'ns/p',
    pool,
    spec: resolvePoolSpec(spec),
    resolution: { ok: true, endpoints: assessed.map((a) => a.endpoint) },
    policy: 'Predictive',
    fleet: {
      endpoints: assessed,
      figures: new Map(),
      routers: 2,
      anomalies: [],
      model: { samples: 0, ready: false, reason: '' },
    },
  };
}

describe('serviceTimeMs', () => {
  it("is the lower of the window's and the latest interval's median, none without either", () => {
    expect(serviceTimeMs(ev({ p50Ms: 12, recentP50Ms: 4 }))).toBe(4); // a queue that just built up
    expect(serviceTimeMs(ev({ p50Ms: 3, recentP50Ms: 9 }))).toBe(3);
    expect(serviceTimeMs(ev({ p50Ms: 3.14159 }))).toBe(3.142);
    expect(serviceTimeMs(ev())).toBeUndefined();
    expect(serviceTimeMs(undefined)).toBeUndefined();
  });
});

describe('xdsPoolInput', () => {
  it('carries the match, the resolved spec, readiness, DRAINING for a fleet breaker, service times, error rates and the offered load', () => {
    const v = viewOf([
      { address: 'a:1', view: ev({ p50Ms: 2, calls: 600 }) },
      {
        address: 'b:1',
        view: ev({ p50Ms: 10, calls: 300, errorRate: 0.1 }),
        forceOpen: true,
        breaker: 'Open',
      },
      { address: 'c:1', endpoint: { address: 'c:1', ready: false } },
    ]);
    expect(xdsPoolInput(v, 30_000)).toEqual({
      key: 'ns/p',
      match: { services: ['sibyl.demo.v1.Demo'], methods: ['/x.Y/Z'] },
      spec: v.spec,
      endpoints: [
        { address: 'a:1', ready: true, draining: false, predictedServiceMs: 2, errorRate: 0 },
        { address: 'b:1', ready: true, draining: true, predictedServiceMs: 10, errorRate: 0.1 },
        { address: 'c:1', ready: false, draining: false },
      ],
      offeredCallsPerSec: 30, // 900 calls in the 30 s window
    });
  });

  it('uses the routers’ concurrency limits only when every endpoint with a service time has one', () => {
    const some = viewOf([
      { address: 'a:1', view: ev({ p50Ms: 2, concurrencyLimit: 20 }) },
      { address: 'b:1', view: ev({ p50Ms: 2 }) },
    ]);
    expect(xdsPoolInput(some, 30_000).endpoints.map((e) => e.concurrency)).toEqual([undefined, undefined]);
    const all = viewOf([
      { address: 'a:1', view: ev({ p50Ms: 2, concurrencyLimit: 20 }) },
      { address: 'b:1', view: ev({ p50Ms: 2, concurrencyLimit: 5 }) },
      { address: 'c:1' }, // no telemetry: neither service time nor limit
    ]);
    expect(xdsPoolInput(all, 30_000).endpoints.map((e) => e.concurrency)).toEqual([20, 5, undefined]);
  });

  it('has no offered load and no endpoints while nothing is known of the fleet', () => {
    const { fleet: _f, ...bare } = viewOf([]);
    const input = xdsPoolInput(bare, 30_000);
    expect(input.endpoints).toEqual([]);
    expect(input.offeredCallsPerSec).toBeUndefined();
  });
});

describe('XdsPublisher', () => {
  it('sets the pool on the ADS server, gives the same input for the same view, and removes a pool that is gone', () => {
    const xds = new XdsServer({
      allowUnauthenticated: true,
      clock: systemClock,
      timers: systemTimers,
      log: makeLogger('test', 'silent'),
    });
    const set: Array<[string, XdsPoolInput | undefined]> = [];
    const removed: string[] = [];
    const sink = {
      setPool: (k: string, i: XdsPoolInput | undefined) => {
        set.push([k, i]);
        xds.setPool(k, i);
      },
    };
    const noCache = { entry: () => undefined, routers: () => [] };
    const p = new XdsPublisher(sink, 30_000, noCache, (k) => removed.push(k));
    const v = viewOf([
      { address: '10.0.0.1:80', view: ev({ p50Ms: 2 }) },
      { address: '10.0.0.2:80', view: ev({ p50Ms: 8 }) },
    ]);
    p.publish('ns/p', v);
    // Weights: 1000/2 and 1000/8 calls/s.
    expect(Object.fromEntries(xds.pool('ns/p')?.weights ?? [])).toEqual({
      '10.0.0.1:80': 500,
      '10.0.0.2:80': 130,
    });
    p.publish('ns/p', v);
    expect(set[1]?.[1]).toEqual(set[0]?.[1]); // the server compares and changes nothing
    p.publish('ns/p', undefined);
    expect(xds.pool('ns/p')).toBeUndefined();
    expect(removed).toEqual(['ns/p']);
  });
});

describe('xdsCache', () => {
  const entry = (methods: string[]) => ({
    cacheJson: JSON.stringify({ methods: methods.map((method) => ({ method, ttl: '5m' })) }),
    flushToken: '',
  });

  it("takes the tier's cacheable methods, sorted, and the routers Envoy can dial", () => {
    expect(
      xdsCache(entry(['/a.S/Z', '/a.S/A']), [
        '10.0.0.9:8080',
        '[fd00::2]:8080',
        'router-0.svc:8080',
        ':8080',
        '0.0.0.0:1',
        'junk',
      ]),
    ).toEqual({ methods: ['/a.S/A', '/a.S/Z'], routers: ['10.0.0.9:8080', '[fd00::2]:8080'] });
  });

  it('is absent without a tier, or with a tier caching nothing', () => {
    expect(xdsCache(undefined, ['10.0.0.9:8080'])).toBeUndefined();
    expect(xdsCache({ cacheJson: '', flushToken: '' }, [])).toBeUndefined();
    expect(xdsCache(entry([]), ['10.0.0.9:8080'])).toBeUndefined();
  });

  it('keeps the methods with no router, so Envoy still has their routes (to the backends)', () => {
    expect(xdsCache(entry(['/a.S/A']), [])).toEqual({ methods: ['/a.S/A'], routers: [] });
  });
});
