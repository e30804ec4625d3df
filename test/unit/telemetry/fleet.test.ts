import { FleetBreakers, FleetTelemetry } from '../../../src/telemetry/fleet.js';
import { LATENCY_BOUNDS_MS, bucketOf, quantile } from '../../../src/telemetry/histogram.js';
import { ManualClock } from '../../../src/util/clock.js';
import type { EndpointLoad } from '../../../src/control/messages.js';

function load(
  address: string,
  calls: number,
  failures: number,
  latencyMs: number,
  extra: Partial<EndpointLoad> = {},
): EndpointLoad {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
  counts[bucketOf(latencyMs)] = calls;
  return {
    pool: 'ns/p',
    address,
    calls,
    errors: failures ? { '14': failures } : {},
    latencyBoundsMs: LATENCY_BOUNDS_MS,
    latencyCounts: counts,
    inflight: 2,
    breaker: 'Closed',
    concurrencyLimit: 0,
    ...extra,
  };
}
const report = (router: string, endpoints: EndpointLoad[]) => ({
  routerId: router,
  routingVersion: 1,
  intervalMs: 1000,
  endpoints,
  samples: [],
  caches: [],
});

describe('histograms', () => {
  it('finds the bucket and interpolates quantiles', () => {
    expect(bucketOf(0.1)).toBe(0);
    expect(bucketOf(10)).toBe(LATENCY_BOUNDS_MS.indexOf(10));
    expect(bucketOf(1e9)).toBe(LATENCY_BOUNDS_MS.length - 1);
    const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
    counts[bucketOf(4)] = 100; // (3, 5]
    expect(quantile(counts, 0.5)).toBeCloseTo(4, 5);
    expect(quantile(new Array<number>(3).fill(0), 0.5)).toBeUndefined();
  });
});

describe('FleetTelemetry', () => {
  it('merges routers and ages figures out of the window', () => {
    const clock = new ManualClock();
    const t = new FleetTelemetry(clock, 10_000);
    t.ingest(report('r1', [load('a:1', 100, 0, 4, { orcaCpu: 0.4 })]));
    t.ingest(report('r2', [load('a:1', 100, 10, 40)]));
    const v = t.view('ns/p', 'a:1');
    expect(v).toMatchObject({ calls: 200, failures: 10, routers: 2, inflight: 4, cpu: 0.4 });
    expect(v?.errorRate).toBeCloseTo(0.05);
    expect(v?.p50Ms).toBeLessThanOrEqual(5);
    expect(v?.p99Ms).toBeGreaterThan(30);
    clock.advance(10_001);
    expect(t.view('ns/p', 'a:1')).toBeUndefined();
  });
});

describe('FleetBreakers', () => {
  it('opens only when the endpoint fails across the fleet, and closes after the recovery timeout', () => {
    const clock = new ManualClock();
    const t = new FleetTelemetry(clock);
    const b = new FleetBreakers(t, clock);
    const cfg = { failureThreshold: 5, recoveryTimeoutMs: 30_000 };
    t.ingest(report('r1', [load('a:1', 20, 20, 1)]));
    t.ingest(report('r2', [load('a:1', 20, 0, 1)]));
    expect(b.evaluate('ns/p', 'a:1', cfg)).toBeUndefined(); // one router's trouble
    t.ingest(report('r2', [load('a:1', 40, 40, 1)]));
    expect(b.evaluate('ns/p', 'a:1', cfg)).toMatchObject({ to: 'Open' });
    expect(b.isOpen('ns/p', 'a:1')).toBe(true);
    clock.advance(29_000);
    expect(b.evaluate('ns/p', 'a:1', cfg)).toBeUndefined();
    clock.advance(1_000);
    expect(b.evaluate('ns/p', 'a:1', cfg)).toMatchObject({ to: 'Closed' });
    expect(b.evaluate('ns/p', 'a:1', cfg)).toBeUndefined(); // old failures forgotten
  });
});

describe('recent p50', () => {
  it("follows each router's latest report, where the window's p50 remembers the slow period", () => {
    const clock = new ManualClock(0);
    const t = new FleetTelemetry(clock, 30_000);
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      t.ingest(report('r1', [load('a', 100, 0, 400)]));
      t.ingest(report('r2', [load('a', 100, 0, 400)]));
    }
    clock.advance(1000);
    t.ingest(report('r1', [load('a', 5, 0, 4)])); // recovered: a few fast probes
    t.ingest(report('r2', [load('a', 5, 0, 4)]));
    const v = t.view('ns/p', 'a');
    expect(v?.p50Ms).toBeGreaterThan(300);
    expect(v?.recentP50Ms).toBeLessThan(5);
  });
});
