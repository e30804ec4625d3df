import type { WireTrainingSample } from '../../../src/control/messages.js';
import { fleetInput } from '../../../src/operator/fleet-features.js';
import { CacheView } from '../../../src/operator/cache-view.js';
import { TelemetryIntake } from '../../../src/operator/telemetry-intake.js';
import { usableSample } from '../../../src/model/evaluate.js';
import { sampleProblem } from '../../../src/model/features.js';
import { FleetTelemetry } from '../../../src/telemetry/fleet.js';
import { ManualClock } from '../../../src/util/clock.js';
import { endpointLoadOf, loadReport } from '../../support/load-report.js';
import { MethodLatencies } from '../../../src/telemetry/method-latency.js';
import { emptyCounts } from '../../../src/telemetry/call-counts.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../../../src/telemetry/histogram.js';

const load = (address: string, calls: number, latencyMs: number, failures = 0) =>
  endpointLoadOf(address, calls, failures, latencyMs, { inflight: 0 });
const report = loadReport;

function setup() {
  const clock = new ManualClock();
  const telemetry = new FleetTelemetry(clock);
  const samples: WireTrainingSample[] = [];
  const changed: string[] = [];
  const methods = new MethodLatencies(30_000);
  const intake = new TelemetryIntake({
    telemetry,
    methods,
    caches: new CacheView(),
    addSamples: (s) => samples.push(...s),
    changed: (p) => changed.push(p),
    clock,
  });
  return { clock, telemetry, samples, changed, intake, methods };
}

describe("an Envoy's access logs", () => {
  it('become samples of what the fleet knew of each endpoint before they were taken in, then fleet figures', () => {
    const { telemetry, samples, changed, intake } = setup();
    intake.accessLogs({
      report: report('envoy/e1', [load('a:1', 40, 4), load('b:1', 40, 40)]),
      observed: [{ pool: 'ns/p', address: 'a:1', payloadBytes: 10, latencyMs: 4, failed: false }],
      methods: new Map(),
    });
    // nothing was known of a:1 before this interval: no features, no sample
    expect(samples).toEqual([]);
    expect(changed).toEqual(['ns/p']);
    const before = { a: telemetry.view('ns/p', 'a:1'), b: telemetry.view('ns/p', 'b:1') };
    intake.accessLogs({
      report: report('envoy/e1', [load('a:1', 40, 20, 40)]),
      observed: [
        { pool: 'ns/p', address: 'a:1', payloadBytes: 300, latencyMs: 21, failed: true },
        { pool: 'ns/p', address: 'b:1', payloadBytes: 0, latencyMs: 38, failed: false },
      ],
      methods: new Map(),
    });
    expect(samples).toHaveLength(2);
    // the typical latency of the pool: the median (upper) of the endpoints' p50s
    const baseline = before.b?.p50Ms;
    expect(samples[0]).toEqual({
      ...fleetInput(before.a!, baseline),
      payloadBytes: 300,
      latencyMs: 21,
      failed: true,
    });
    expect(samples[0]?.errorRate).toBe(0); // the interval's own failures were not known yet
    expect(samples[1]?.builtinEstimateMs).toBe(before.b?.recentP50Ms);
    expect(samples.map((s) => sampleProblem(s))).toEqual([undefined, undefined]);
    expect(usableSample(samples[1]!)).toBe(true); // a refit takes it (failed calls only with includeFailed)
    expect(telemetry.view('ns/p', 'a:1')).toMatchObject({ calls: 80, failures: 40, routers: 1 });
  });
});

describe("a backend's own counts", () => {
  it('go in as the server side; ORCA figures out of band join the view', () => {
    const { telemetry, changed, intake } = setup();
    intake.served(report('prometheus', [load('a:1', 10, 4, 8)]));
    intake.load('ns/p', 'a:1', { cpu: 0.8 });
    expect(telemetry.view('ns/p', 'a:1')).toMatchObject({
      served: { calls: 10, failures: 8 },
      routers: 0,
      cpu: 0.8,
    });
    expect(changed).toEqual(['ns/p']);
  });
});

describe('latencies per method', () => {
  const counts = (calls: number, ms: number) => {
    const c = emptyCounts();
    c.calls = calls;
    c.counts[bucketOf(ms)] = calls;
    return c;
  };
  it("come from the backends' own histograms, and from Envoys' access logs in their place when both count", () => {
    const { clock, intake, methods } = setup();
    const get = '/a.A/Get';
    intake.served(report('prometheus', [load('a:1', 30, 5)]), new Map([[get, counts(30, 5)]]));
    expect(methods.figures('ns/p', clock.now())).toMatchObject([{ method: get, calls: 30 }]);
    intake.accessLogs({
      report: report('envoy/e1', [load('a:1', 25, 40)]),
      observed: [],
      methods: new Map([['ns/p', new Map([[get, counts(25, 40)]])]]),
    });
    const [f] = methods.figures('ns/p', clock.now());
    expect(f).toMatchObject({ method: get, calls: 25 });
    expect(f?.p50Ms).toBeGreaterThan(30);
  });

  it("come from routers' LoadReports as their clients', added to an Envoy's (other calls); histograms in other bounds are left out", () => {
    const { clock, intake, methods } = setup();
    const get = '/a.A/Get';
    const put = '/a.A/Put';
    const methodLoad = (method: string, c: ReturnType<typeof counts>, bounds = LATENCY_BOUNDS_MS) => ({
      pool: 'ns/p',
      method,
      calls: c.calls,
      latencyBoundsMs: bounds,
      latencyCounts: bounds === LATENCY_BOUNDS_MS ? c.counts : [c.calls],
    });
    intake.served(report('prometheus', [load('a:1', 30, 5)]), new Map([[get, counts(30, 5)]]));
    intake.router({
      ...report('r1', [load('a:1', 20, 40)]),
      methods: [methodLoad(get, counts(20, 40)), methodLoad(put, counts(20, 40), [1000])],
    });
    intake.accessLogs({
      report: report('envoy/e1', [load('a:1', 10, 40)]),
      observed: [],
      methods: new Map([['ns/p', new Map([[get, counts(10, 40)]])]]),
    });
    const figures = methods.figures('ns/p', clock.now());
    expect(figures).toMatchObject([{ method: get, calls: 30 }]);
    expect(figures[0]?.p50Ms).toBeGreaterThan(30);
  });
});
