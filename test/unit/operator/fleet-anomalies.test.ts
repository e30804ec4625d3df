import { AnomalyMonitor, type AnomalyTransition } from '../../../src/anomaly/monitor.js';
import { resolvePoolSpec } from '../../../src/api/resolve.js';
import type { EndpointLoad } from '../../../src/control/messages.js';
import { AnomalyObserver, poolModelError } from '../../../src/operator/anomaly-observer.js';
import type { PoolObject } from '../../../src/operator/context.js';
import type { Predictor } from '../../../src/operator/fleet-predictor.js';
import { FleetView } from '../../../src/operator/fleet-view.js';
import { PoolBreakers } from '../../../src/operator/pool-breakers.js';
import type { EndpointFigures } from '../../../src/operator/pool-view.js';
import { ResourceCollector } from '../../../src/telemetry/collector.js';
import { FleetBreakers, FleetTelemetry } from '../../../src/telemetry/fleet.js';
import { LATENCY_BOUNDS_MS } from '../../../src/telemetry/histogram.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { MethodLatencies } from '../../../src/telemetry/method-latency.js';

const KEY = 'ns/shop';
const ADDRS = ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50051'];
const pool = {
  apiVersion: 'sibyl.dev/v1alpha1',
  kind: 'BackendPool',
  metadata: { name: 'shop', namespace: 'ns' },
  spec: { endpoints: [], balancing: { policy: 'PeakEwma' }, telemetry: { interval: '2s' } },
} as unknown as PoolObject;
const resolution = { ok: true as const, endpoints: ADDRS.map((address) => ({ address, ready: true })) };

/** One router's report: `calls` calls per endpoint, all in the histogram bucket holding `ms`. */
function load(address: string, ms: number, calls: number): EndpointLoad {
  const counts = LATENCY_BOUNDS_MS.map(() => 0);
  const i = LATENCY_BOUNDS_MS.findIndex((b) => b >= ms);
  counts[i < 0 ? counts.length - 1 : i] = calls;
  return {
    pool: KEY,
    address,
    calls,
    errors: {},
    latencyBoundsMs: [...LATENCY_BOUNDS_MS],
    latencyCounts: counts,
    inflight: 1,
    breaker: 'Closed',
    concurrencyLimit: 100,
  };
}

/**
 * A fleet at 10 ms per call with a model predicting 10 ms, sampled every 2 s; `drift` says from which
 * point on the backends run at 25 ms while the model keeps predicting 10, and `hit` gives the pool's
 * cache hit ratio at each point.
 */
function run(points: number, drift: number, hit: (i: number) => number | undefined): AnomalyTransition[] {
  const clock = new ManualClock(0);
  const rnd = seededRandom(5);
  const predictor: Predictor = {
    ready: true,
    status: { samples: 0, ready: true, reason: 'a test model' },
    predict: () => ({ latencyMs: 10 * (0.95 + 0.1 * rnd()) }),
  };
  let i = 0;
  const out: AnomalyTransition[] = [];
  const telemetry = new FleetTelemetry(clock);
  const fleet = new FleetView({
    telemetry,
    breakers: new PoolBreakers(new FleetBreakers(telemetry, clock), telemetry, () => undefined),
    predictor,
    resources: new ResourceCollector([]),
    anomalies: new AnomalyObserver({
      monitor: new AnomalyMonitor(),
      clock,
      hitRatio: () => hit(i),
      onTransition: (_p, t) => out.push(t),
    }),
    routers: () => 1,
    methods: new MethodLatencies(30_000),
    clock,
  });
  const spec = resolvePoolSpec(pool.spec);
  for (i = 0; i < points; i++) {
    clock.advance(2000);
    const ms = i >= drift ? 25 : 10 * (0.9 + 0.2 * rnd());
    telemetry.ingest({
      routerId: 'r1',
      routingVersion: 1,
      intervalMs: 2000,
      endpoints: ADDRS.map((a) => load(a, ms, 50)),
      samples: [],
      caches: [],
    });
    fleet.observe(KEY, pool, spec, resolution);
  }
  return out;
}

test('predictions that stop matching what the fleet sees raise ModelDrift', () => {
  const quiet = run(120, Infinity, () => undefined);
  expect(quiet.filter((t) => t.reason === 'ModelDrift')).toEqual([]);
  const drifted = run(120, 80, () => undefined);
  const raised = drifted.filter((t) => t.reason === 'ModelDrift' && t.state === 'raised');
  expect(raised).toHaveLength(1);
  expect(raised[0]?.message).toMatch(/model error .* retrain/);
});

test('a falling cache hit ratio raises CacheHitDrop, and it clears when the ratio recovers', () => {
  const rnd = seededRandom(9);
  const steady = () => 0.85 + 0.02 * rnd();
  const quiet = run(150, Infinity, steady);
  expect(quiet.filter((t) => t.reason === 'CacheHitDrop')).toEqual([]);
  const t = run(150, Infinity, (i) => (i >= 80 && i < 110 ? 0.3 : steady()));
  expect(t.filter((x) => x.reason === 'CacheHitDrop').map((x) => x.state)).toEqual(['raised', 'cleared']);
  expect(t.find((x) => x.reason === 'CacheHitDrop')?.message).toMatch(/cache hit ratio 30\.00%/);
});

test('poolModelError weighs endpoints by calls and skips those without both figures', () => {
  const figures = new Map<string, EndpointFigures>([
    ['a', { predictedLatencyMs: 10, latencyP50Ms: 10 }],
    ['b', { predictedLatencyMs: 10, latencyP50Ms: 10 * Math.E }],
    ['c', { latencyP50Ms: 5 }],
  ]);
  const views = new Map([
    ['a', { calls: 300 }],
    ['b', { calls: 100 }],
    ['c', { calls: 1000 }],
  ]);
  expect(poolModelError(figures, views)).toBeCloseTo(0.25, 12);
  expect(poolModelError(new Map([['c', { latencyP50Ms: 5 }]]), views)).toBeUndefined();
});
