import { FleetBreakers, FleetTelemetry } from '../../../src/telemetry/fleet.js';
import { LATENCY_BOUNDS_MS, bucketOf, quantile } from '../../../src/telemetry/histogram.js';
import { ManualClock } from '../../../src/util/clock.js';
import { endpointLoadOf, loadReport } from '../../support/load-report.js';

const load = endpointLoadOf;
const report = loadReport;

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

describe('reporters on the server side (a backend counting its own calls)', () => {
  it("give the figures when no client reports the endpoint, and stand beside clients' figures otherwise", () => {
    const clock = new ManualClock();
    const t = new FleetTelemetry(clock, 10_000);
    t.ingest(report('prometheus', [load('a:1', 100, 10, 40, { inflight: 7 })]), 'server');
    expect(t.view('ns/p', 'a:1')).toMatchObject({
      calls: 100,
      failures: 10,
      inflight: 7,
      routers: 0,
      failingRouters: 0,
      served: { calls: 100, failures: 10 },
    });
    expect(t.view('ns/p', 'a:1')?.p50Ms).toBeGreaterThan(30);
    expect(t.routers()).toEqual([]); // a backend is not a client of itself

    // The same calls seen by a client: its figures, never the sum of both sides.
    t.ingest(report('envoy/e1', [load('a:1', 60, 0, 4)]));
    const v = t.view('ns/p', 'a:1');
    expect(v).toMatchObject({ calls: 60, failures: 0, routers: 1, served: { calls: 100, failures: 10 } });
    expect(v?.p50Ms).toBeLessThan(5);
    expect(t.addresses('ns/p')).toEqual(['a:1']);
  });

  it('open a fleet breaker alone when the backend itself failed most of the calls it served', () => {
    const clock = new ManualClock();
    const t = new FleetTelemetry(clock);
    const b = new FleetBreakers(t, clock);
    const cfg = { failureThreshold: 5, recoveryTimeoutMs: 30_000 };
    t.ingest(report('prometheus', [load('a:1', 8, 4, 1)]), 'server'); // half: not more than half
    expect(b.evaluate('ns/p', 'a:1', cfg)).toBeUndefined();
    t.ingest(report('prometheus', [load('a:1', 4, 4, 1)]), 'server'); // 8 of 12
    expect(b.evaluate('ns/p', 'a:1', cfg)).toMatchObject({
      to: 'Open',
      message: expect.stringContaining('failed 8 of the 12 calls it served'),
    });
    // below the threshold, however bad the ratio, it stays closed
    t.ingest(report('prometheus', [load('b:1', 3, 3, 1)]), 'server');
    expect(b.evaluate('ns/p', 'b:1', cfg)).toBeUndefined();
  });
});

describe('out-of-band ORCA figures', () => {
  it('give CPU and memory when newer than what reports carry, and age out with the window', () => {
    const clock = new ManualClock();
    const t = new FleetTelemetry(clock, 10_000);
    t.ingest(report('r1', [load('a:1', 10, 0, 4, { orcaCpu: 0.2, orcaMemory: 0.1 })]));
    clock.advance(1000);
    t.observeLoad('ns/p', 'a:1', { cpu: 0.9, memory: 0.3 });
    expect(t.view('ns/p', 'a:1')).toMatchObject({ cpu: 0.9, memory: 0.3, routers: 1 });
    clock.advance(1000);
    t.ingest(report('r1', [load('a:1', 10, 0, 4, { orcaCpu: 0.5 })]));
    expect(t.view('ns/p', 'a:1')?.cpu).toBe(0.5);
    // a report without ORCA does not hide the last figure
    clock.advance(1000);
    t.ingest(report('prometheus', [load('a:1', 10, 0, 4)]), 'server');
    expect(t.view('ns/p', 'a:1')?.cpu).toBe(0.5);
    // ORCA alone says nothing of calls: no view without a report
    t.observeLoad('ns/p', 'b:1', { cpu: 0.4 });
    expect(t.view('ns/p', 'b:1')).toBeUndefined();
    clock.advance(9_500);
    t.ingest(report('r1', [load('a:1', 10, 0, 4)]));
    t.observeLoad('ns/p', 'a:1', { cpu: 0.7 });
    clock.advance(10_001);
    t.ingest(report('r1', [load('a:1', 10, 0, 4)]));
    expect(t.view('ns/p', 'a:1')?.cpu).toBeUndefined();
  });
});
