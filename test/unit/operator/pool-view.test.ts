import { resolvePoolSpec } from '../../../src/api/resolve.js';
import type { LoadReport } from '../../../src/control/messages.js';
import { RoutingState } from '../../../src/control/routing-state.js';
import type { PoolObject } from '../../../src/operator/context.js';
import { endpointViews, typicalLatencyMs } from '../../../src/operator/endpoint-views.js';
import type { Predictor } from '../../../src/operator/fleet-predictor.js';
import { PoolBreakers, breakerState } from '../../../src/operator/pool-breakers.js';
import { policyInForce, type AssessedEndpoint, type PoolView } from '../../../src/operator/pool-view.js';
import { predictEndpoints } from '../../../src/operator/predictions.js';
import { RouterPublisher } from '../../../src/operator/router-publisher.js';
import { endpointFigures } from '../../../src/operator/status-figures.js';
import { endpointWeights } from '../../../src/operator/weights.js';
import { wireEndpoint, wirePool } from '../../../src/operator/wire-pool.js';
import { FleetBreakers, FleetTelemetry, type EndpointView } from '../../../src/telemetry/fleet.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../../../src/telemetry/histogram.js';
import { ManualClock } from '../../../src/util/clock.js';

const view = (over: Partial<EndpointView> = {}): EndpointView => ({
  calls: 100,
  failures: 0,
  errorRate: 0,
  p50Ms: 5,
  p99Ms: 20,
  inflight: 3,
  routers: 2,
  failingRouters: 0,
  openBreakers: 0,
  ageMs: 1234.6,
  ...over,
});

const pool = (spec: Record<string, unknown> = {}): PoolObject =>
  ({
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'BackendPool',
    metadata: { name: 'p', namespace: 'ns' },
    spec: { endpoints: [{ address: 'a:1' }], match: { services: ['a.B'] }, ...spec },
  }) as unknown as PoolObject;

describe('endpointWeights', () => {
  it('is inversely proportional to the prediction, 1 for the best, 0 without a prediction', () => {
    const w = endpointWeights(
      ['a', 'b', 'c'],
      new Map([
        ['a', { latencyMs: 5 }],
        ['b', { latencyMs: 20 }],
      ]),
    );
    expect(Object.fromEntries(w)).toEqual({ a: 1, b: 0.25, c: 0 });
  });
  it('weighs nothing while nothing is predicted, and floors predictions at 0.01 ms', () => {
    expect(endpointWeights(['a'], new Map()).size).toBe(0);
    const w = endpointWeights(
      ['a', 'b'],
      new Map([
        ['a', { latencyMs: 0 }],
        ['b', { latencyMs: 0.02 }],
      ]),
    );
    expect(Object.fromEntries(w)).toEqual({ a: 1, b: 0.5 });
  });
  it('rounds to 3 decimals', () => {
    const w = endpointWeights(
      ['a', 'b'],
      new Map([
        ['a', { latencyMs: 3 }],
        ['b', { latencyMs: 7 }],
      ]),
    );
    expect(w.get('b')).toBe(0.429);
  });
});

describe('breakerState', () => {
  it('is Open when the fleet holds it open or most reporting routers have theirs open', () => {
    expect(breakerState(true, undefined)).toBe('Open');
    expect(breakerState(false, undefined)).toBe('Closed');
    expect(breakerState(false, view({ routers: 3, openBreakers: 2 }))).toBe('Open');
    expect(breakerState(false, view({ routers: 4, openBreakers: 2 }))).toBe('Closed');
  });
});

describe('PoolBreakers', () => {
  /** One router's report on `address` of `calls` calls, `failures` of them failed, at 5 ms. */
  const report = (router: string, address: string, calls: number, failures: number): LoadReport => {
    const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
    counts[bucketOf(5)] = calls;
    const errors: Record<string, number> = failures ? { '14': failures } : {};
    return {
      routerId: router,
      routingVersion: 1,
      intervalMs: 1000,
      samples: [],
      caches: [],
      endpoints: [
        {
          pool: 'ns/p',
          address,
          calls,
          errors,
          latencyBoundsMs: LATENCY_BOUNDS_MS,
          latencyCounts: counts,
          inflight: 0,
          breaker: 'Closed',
          concurrencyLimit: 0,
        },
      ],
    };
  };
  it('opens for an endpoint failing across the fleet, reports each transition, and rereads the view on closing', () => {
    const clock = new ManualClock(0);
    const telemetry = new FleetTelemetry(clock);
    const seen: string[] = [];
    const breakers = new PoolBreakers(new FleetBreakers(telemetry, clock), telemetry, (_p, t) =>
      seen.push(`${t.address} ${t.to}`),
    );
    const cfg = resolvePoolSpec(pool().spec).circuitBreaker;
    const eps = [
      { address: 'bad:1', ready: true },
      { address: 'good:1', ready: true },
    ];
    for (const r of ['r1', 'r2']) {
      telemetry.ingest(report(r, 'bad:1', 10, 10));
      telemetry.ingest(report(r, 'good:1', 10, 0));
    }
    const views = endpointViews(telemetry, 'ns/p', eps);
    expect([...breakers.evaluate('ns/p', pool(), cfg, eps, views)]).toEqual(['bad:1']);
    expect(seen).toEqual(['bad:1 Open']);
    expect(views.get('bad:1')?.calls).toBe(20);
    clock.advance(cfg.recoveryTimeoutMs);
    expect(breakers.evaluate('ns/p', pool(), cfg, eps, views).size).toBe(0);
    expect(seen).toEqual(['bad:1 Open', 'bad:1 Closed']);
    // Closing forgot the endpoint's failures, and the view given back says so.
    expect(views.get('bad:1')).toBeUndefined();
    expect(views.get('good:1')?.calls).toBe(20);
  });
});

describe('typicalLatencyMs', () => {
  it('is the median p50 (the upper middle of an even count), skipping endpoints without one', () => {
    expect(typicalLatencyMs([view({ p50Ms: 9 }), undefined, view({ p50Ms: 1 }), view({ p50Ms: 4 })])).toBe(4);
    expect(typicalLatencyMs([view({ p50Ms: 9 }), view({ p50Ms: 1 })])).toBe(9);
    expect(typicalLatencyMs([undefined, view({ p50Ms: undefined })])).toBeUndefined();
  });
});

describe('predictEndpoints', () => {
  const eps = [
    { address: 'a:1', ready: true },
    { address: 'b:1', ready: true },
  ];
  const views = new Map([
    ['a:1', view({ p50Ms: 4 })],
    ['b:1', undefined],
  ]);
  it('asks the model per endpoint with its view and the pool baseline, keeping what it answers', () => {
    const asked: Array<[string, number | undefined, number | undefined]> = [];
    const predictor: Predictor = {
      ready: true,
      status: { samples: 0, ready: true, reason: '' },
      predict: (_pool, address, v, baselineMs) => {
        asked.push([address, v?.p50Ms, baselineMs]);
        return v ? { latencyMs: v.p50Ms ?? 0 } : undefined;
      },
    };
    const p = predictEndpoints(predictor, 'ns/p', eps, views, 7);
    expect(asked).toEqual([
      ['a:1', 4, 7],
      ['b:1', undefined, 7],
    ]);
    expect([...p]).toEqual([['a:1', { latencyMs: 4 }]]);
  });
  it('predicts nothing while no model is in force', () => {
    const predictor: Predictor = {
      ready: false,
      status: { samples: 0, ready: false, reason: 'no model' },
      predict: () => {
        throw new Error('asked without a model');
      },
    };
    expect(predictEndpoints(predictor, 'ns/p', eps, views, 7).size).toBe(0);
  });
});

const assessed = (over: Partial<AssessedEndpoint> = {}): AssessedEndpoint => ({
  endpoint: { address: 'a:1', pod: 'a-0', ready: true },
  view: view({
    cpu: 0.4567,
    memory: 0.25,
    p50Ms: 5.123,
    p99Ms: 20.456,
    concurrencyLimit: 32,
    errorRate: 0.012345,
  }),
  forceOpen: false,
  breaker: 'Closed',
  prediction: { latencyMs: 6.54321, p90Ms: 9.87654 },
  weight: 0.5,
  ...over,
});

describe('endpointFigures', () => {
  it('rounds latencies to 0.01 ms and CPU to 0.001, with the prediction and the weight', () => {
    expect(endpointFigures(assessed())).toEqual({
      breaker: 'Closed',
      inflight: 3,
      cpu: 0.457,
      latencyP50Ms: 5.12,
      latencyP99Ms: 20.46,
      concurrencyLimit: 32,
      predictedLatencyMs: 6.54,
      weight: 0.5,
    });
  });
  it('takes CPU cores and memory from the resource figures over ORCA utilisation', () => {
    const f = endpointFigures(
      assessed({ resources: { cpuCores: 1.23456, memoryBytes: 1e6 + 0.6, source: 'prometheus', ageMs: 0 } }),
    );
    expect(f).toMatchObject({ cpu: 1.235, memoryBytes: 1000001 });
  });
  it('has only the breaker for an endpoint no router reported', () => {
    expect(
      endpointFigures({ endpoint: { address: 'a:1', ready: true }, forceOpen: true, breaker: 'Open' }),
    ).toEqual({ breaker: 'Open' });
  });
});

describe('the wire format', () => {
  it('carries an endpoint with its fleet figures, prediction (0.001 ms) and weight', () => {
    expect(wireEndpoint(assessed({ forceOpen: true }))).toEqual({
      address: 'a:1',
      pod: 'a-0',
      ready: true,
      forceOpen: true,
      figuresAgeMs: 1235,
      errorRate: 0.0123,
      cpu: 0.4567,
      memory: 0.25,
      predictedLatencyMs: 6.543,
      predictedP90Ms: 9.877,
      weight: 0.5,
    });
    expect(
      wireEndpoint({ endpoint: { address: 'b:1', ready: false }, forceOpen: false, breaker: 'Closed' }),
    ).toEqual({ address: 'b:1', pod: '', ready: false, forceOpen: false, figuresAgeMs: 0 });
  });
  it('makes a pool entry from the view: raw spec, policy in force, endpoints and cache', () => {
    const p = pool({ balancing: { policy: 'Predictive' } });
    const v: PoolView = {
      key: 'ns/p',
      pool: p,
      spec: resolvePoolSpec(p.spec),
      resolution: { ok: true, endpoints: [{ address: 'a:1', ready: true }] },
      policy: 'PeakEwma',
      fleet: {
        endpoints: [assessed()],
        figures: new Map(),
        routers: 1,
        anomalies: [],
        model: { samples: 0, ready: false, reason: 'no model' },
      },
    };
    const w = wirePool(v, { cacheJson: '{"l1":{}}', flushToken: 't1' });
    expect(w).toMatchObject({
      name: 'ns/p',
      policy: 'PeakEwma',
      cacheJson: '{"l1":{}}',
      cacheFlushToken: 't1',
    });
    expect(JSON.parse(w.specJson)).toEqual(p.spec);
    expect(w.endpoints.map((e) => e.address)).toEqual(['a:1']);
    const { fleet: _fleet, ...statusOnly } = v;
    expect(wirePool(statusOnly, undefined)).toEqual({
      name: 'ns/p',
      specJson: JSON.stringify(p.spec),
      endpoints: [],
      policy: 'PeakEwma',
    });
  });
});

describe('policyInForce', () => {
  it("is the spec's policy, or its fallback while Predictive has no model", () => {
    const predictive = resolvePoolSpec(pool().spec);
    expect(policyInForce(predictive, true)).toBe('Predictive');
    expect(policyInForce(predictive, false)).toBe('PeakEwma');
    const rr = resolvePoolSpec(
      pool({ balancing: { policy: 'Predictive', fallbackPolicy: 'RoundRobin' } }).spec,
    );
    expect(policyInForce(rr, false)).toBe('RoundRobin');
    expect(policyInForce(resolvePoolSpec(pool({ balancing: { policy: 'LeastRequest' } }).spec), false)).toBe(
      'LeastRequest',
    );
  });
});

describe('RouterPublisher', () => {
  it('publishes a view as the pool entry once, and removes the pool when it is gone', () => {
    const routing = new RoutingState(1);
    let cache: { cacheJson: string; flushToken: string } | undefined = undefined;
    const pub = new RouterPublisher(routing, () => cache);
    const p = pool();
    const v: PoolView = {
      key: 'ns/p',
      pool: p,
      spec: resolvePoolSpec(p.spec),
      resolution: { ok: true, endpoints: [] },
      policy: 'Predictive',
    };
    pub.publish('ns/p', v);
    const first = routing.version;
    expect(routing.get('ns/p')?.policy).toBe('Predictive');
    pub.publish('ns/p', v);
    expect(routing.version).toBe(first); // level-based: the same view changes nothing
    cache = { cacheJson: '{}', flushToken: 'x' };
    pub.publish('ns/p', v);
    expect(routing.get('ns/p')?.cacheFlushToken).toBe('x');
    pub.publish('ns/p', undefined);
    expect(routing.get('ns/p')).toBeUndefined();
    expect(routing.names()).toEqual([]);
  });
});
