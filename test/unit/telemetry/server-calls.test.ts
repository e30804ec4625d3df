import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Status } from '../../../src/grpc/status.js';
import { LATENCY_BOUNDS_MS, bucketOf, quantile, rebucketInto } from '../../../src/telemetry/histogram.js';
import { parseExposition, parseSeriesSelector } from '../../../src/telemetry/series.js';
import {
  grpcCodeOf,
  readServerCounters,
  servedBetween,
  type ServerCounters,
} from '../../../src/telemetry/server-calls.js';
import { BackendMetrics } from '../../../src/tools/backend/metrics.js';
import { Slots } from '../../../src/tools/backend/slots.js';

const SERIES = {
  latency: parseSeriesSelector('grpc_server_handling_seconds'),
  handled: parseSeriesSelector('grpc_server_handled_total'),
  started: parseSeriesSelector('grpc_server_started_total'),
};
const read = (text: string, series = SERIES): ServerCounters => {
  const c = readServerCounters(parseExposition(text), series);
  if (!c) throw new Error('no counters');
  return c;
};
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * What a Go service with go-grpc-middleware's server metrics (histogram on, default buckets
 * prometheus.DefBuckets) exposes, for one method; `h` maps each le to its cumulative count.
 */
function goExposition(o: {
  h: Record<string, number>;
  count: number;
  handled: Record<string, number>;
  started: number;
  start?: number;
}): string {
  const labels = 'grpc_method="Get",grpc_service="shop.Cart",grpc_type="unary"';
  return [
    '# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.',
    '# TYPE grpc_server_handled_total counter',
    ...Object.entries(o.handled).map(
      ([code, n]) => `grpc_server_handled_total{grpc_code="${code}",${labels}} ${n}`,
    ),
    '# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
    '# TYPE grpc_server_handling_seconds histogram',
    ...Object.entries(o.h).map(([le, n]) => `grpc_server_handling_seconds_bucket{${labels},le="${le}"} ${n}`),
    `grpc_server_handling_seconds_sum{${labels}} 1.5`,
    `grpc_server_handling_seconds_count{${labels}} ${o.count}`,
    '# HELP grpc_server_started_total Total number of RPCs started on the server.',
    '# TYPE grpc_server_started_total counter',
    `grpc_server_started_total{${labels}} ${o.started}`,
    ...(o.start !== undefined
      ? ['# TYPE process_start_time_seconds gauge', `process_start_time_seconds ${o.start}`]
      : []),
    '',
  ].join('\n');
}
const DEF_BUCKETS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'];
const cumulative = (perBucket: number[]) => {
  let c = 0;
  return Object.fromEntries(DEF_BUCKETS.map((le, i) => [le, (c += perBucket[i] ?? 0)]));
};

describe("a backend's own call counters", () => {
  it('reads go-grpc-middleware: Go code names, DefBuckets, calls in flight', () => {
    const c = read(
      goExposition({
        h: cumulative([90, 10]),
        count: 100,
        handled: { OK: 95, Unavailable: 4, NotFound: 1 },
        started: 103,
      }),
    );
    expect(c.latency.size).toBe(1);
    expect([...c.latency.values()][0]?.buckets.get(0.005)).toBe(90);
    expect([...c.latency.values()][0]?.buckets.get(Infinity)).toBe(100);
    expect([...c.handled.values()].map((h) => h.code).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([
      Status.OK,
      Status.NOT_FOUND,
      Status.UNAVAILABLE,
    ]);
    expect(c.started).toBe(103);
  });

  it('turns the increase between two scrapes into calls, server-fault errors by code, latencies and in-flight', () => {
    const prev = read(
      goExposition({ h: cumulative([90, 10]), count: 100, handled: { OK: 100 }, started: 100 }),
    );
    // 50 more calls: 20 under 5 ms, 30 in (50 ms, 100 ms]; 6 UNAVAILABLE, 2 NOT_FOUND, 2 still running
    const next = read(
      goExposition({
        h: cumulative([110, 10, 0, 0, 30]),
        count: 150,
        handled: { OK: 142, Unavailable: 6, NotFound: 2 },
        started: 152,
      }),
    );
    const s = servedBetween(prev, next);
    expect(s.counts.calls).toBe(50);
    expect(Object.fromEntries(s.counts.errors)).toEqual({ [Status.UNAVAILABLE]: 6 });
    expect(s.inflight).toBe(2);
    expect(sum(s.counts.counts)).toBeCloseTo(50, 9);
    // spread uniformly over (0, 5] ms and (50, 100] ms in the shared buckets
    expect(sum(s.counts.counts.slice(0, bucketOf(5) + 1))).toBeCloseTo(20, 9);
    expect(sum(s.counts.counts.slice(bucketOf(75), bucketOf(100) + 1))).toBeCloseTo(30, 9);
    expect(quantile(s.counts.counts, 0.9)).toBeGreaterThan(50);
    expect(quantile(s.counts.counts, 0.9)).toBeLessThanOrEqual(100);
  });

  it('counts a counter that went down, or a new process start time, from zero (a restart)', () => {
    const before = goExposition({
      h: cumulative([900]),
      count: 900,
      handled: { OK: 890, Internal: 10 },
      started: 900,
      start: 100,
    });
    const restarted = goExposition({
      h: cumulative([7, 3]),
      count: 10,
      handled: { OK: 8, Internal: 2 },
      started: 10,
      start: 200,
    });
    const s = servedBetween(read(before), read(restarted));
    expect(s.counts.calls).toBe(10);
    expect(Object.fromEntries(s.counts.errors)).toEqual({ [Status.INTERNAL]: 2 });
    // more calls since the restart than before it: only the start time shows it
    const busy = goExposition({
      h: cumulative([950]),
      count: 950,
      handled: { OK: 950 },
      started: 950,
      start: 200,
    });
    expect(servedBetween(read(before), read(busy)).counts.calls).toBe(950);
    // without a start time, a decrease alone says so
    const noStart = (n: number) =>
      goExposition({ h: cumulative([n]), count: n, handled: { OK: n }, started: n });
    expect(servedBetween(read(noStart(900)), read(noStart(12))).counts.calls).toBe(12);
  });

  it('merges the buckets around a bound one scrape lacks, and counts a series new since the last scrape whole', () => {
    const prev = read(goExposition({ h: cumulative([10, 10]), count: 20, handled: { OK: 20 }, started: 20 }));
    const h = cumulative([20, 20]); // +10 under 5 ms, +10 in (5, 10] ms
    delete h['0.005'];
    const next = read(goExposition({ h, count: 40, handled: { OK: 40 }, started: 40 }));
    const s = servedBetween(prev, next);
    expect(s.counts.calls).toBe(20);
    expect(sum(s.counts.counts.slice(0, bucketOf(10) + 1))).toBeCloseTo(20, 9); // all 20 in (0, 10] ms
    expect(s.counts.counts[bucketOf(7)]).toBeCloseTo(5, 9); // spread: (5, 7.5] holds a quarter

    const other = goExposition({
      h: cumulative([5]),
      count: 5,
      handled: { Unavailable: 5 },
      started: 5,
    }).replace(/grpc_method="Get"/g, 'grpc_method="Put"');
    const both = read(
      `${goExposition({ h: cumulative([10, 10]), count: 20, handled: { OK: 20 }, started: 20 })}${other}`,
    );
    const t = servedBetween(prev, both);
    expect(t.counts.calls).toBe(5);
    expect(Object.fromEntries(t.counts.errors)).toEqual({ [Status.UNAVAILABLE]: 5 });
  });

  it('reads only the series a selector names, and falls back to the handled counter without a histogram', () => {
    const text = goExposition({ h: cumulative([10]), count: 10, handled: { OK: 10 }, started: 10 });
    const onlyPut = {
      ...SERIES,
      latency: parseSeriesSelector('grpc_server_handling_seconds{grpc_method="Put"}'),
    };
    expect(read(text, onlyPut).latency.size).toBe(0);
    const noHistogram = { ...SERIES, latency: parseSeriesSelector('absent_seconds') };
    const later = goExposition({
      h: cumulative([30]),
      count: 30,
      handled: { OK: 25, DeadlineExceeded: 5 },
      started: 31,
    });
    const s = servedBetween(read(text, noHistogram), read(later, noHistogram));
    expect(s.counts.calls).toBe(20);
    expect(Object.fromEntries(s.counts.errors)).toEqual({ [Status.DEADLINE_EXCEEDED]: 5 });
    expect(sum(s.counts.counts)).toBe(0); // no latencies known
    expect(readServerCounters(parseExposition('up 1\n'), SERIES)).toBeUndefined();
  });

  it("reads what sibyl backend's prom-client series expose", async () => {
    const m = new BackendMetrics(new Slots(0), { defaultMetrics: false });
    const scrape = async () => read(await m.registry.metrics());
    m.callStarted('Echo');
    m.callHandled('Echo', Status.OK, 0.002);
    const prev = await scrape();
    for (let i = 0; i < 8; i++) m.callStarted('Echo');
    for (let i = 0; i < 6; i++) m.callHandled('Echo', Status.OK, 0.004);
    m.callHandled('Echo', Status.UNAVAILABLE, 0.001);
    const s = servedBetween(prev, await scrape());
    expect(s.counts.calls).toBe(7);
    expect(Object.fromEntries(s.counts.errors)).toEqual({ [Status.UNAVAILABLE]: 1 });
    expect(s.inflight).toBe(1);
    // its buckets are the shared bounds: nothing is spread
    expect(s.counts.counts[bucketOf(4)]).toBe(6);
    expect(s.counts.counts[bucketOf(1)]).toBe(1);
  });

  it('keeps each method of a histogram apart (the parser alone folds them into one)', () => {
    const get = goExposition({ h: cumulative([10]), count: 10, handled: { OK: 10 }, started: 10 });
    const put = (n: number) =>
      goExposition({ h: cumulative([0, 0, 0, n]), count: n, handled: { OK: n }, started: n }).replace(
        /grpc_method="Get"/g,
        'grpc_method="Put"',
      );
    // What parse-prometheus-text-format makes of two label sets of one histogram: one sample, no labels.
    const folded = parsePrometheusTextFormat(`${get}${put(4)}`).filter(
      (f) => f.name === 'grpc_server_handling_seconds',
    );
    expect(folded[0]?.metrics).toHaveLength(1);
    expect(folded[0]?.metrics[0]?.labels).toBeUndefined();

    const prev = read(`${get}${put(4)}`);
    expect([...prev.latency.values()].map((h) => [h.method, h.count])).toEqual([
      ['/shop.Cart/Get', 10],
      ['/shop.Cart/Put', 4],
    ]);
    const next = read(
      `${goExposition({ h: cumulative([30]), count: 30, handled: { OK: 30 }, started: 30 })}${put(10)}`,
    );
    const s = servedBetween(prev, next);
    expect(s.counts.calls).toBe(26);
    expect(s.methods.get('/shop.Cart/Get')?.calls).toBe(20);
    expect(s.methods.get('/shop.Cart/Put')?.calls).toBe(6);
    // Get's 20 calls all in (0, 5] ms, Put's 6 in (25, 50] ms
    expect(quantile(s.methods.get('/shop.Cart/Get')?.counts ?? [], 0.99)).toBeLessThanOrEqual(5);
    expect(quantile(s.methods.get('/shop.Cart/Put')?.counts ?? [], 0.5)).toBeGreaterThan(25);
    // a selector naming one method reads that method only
    const onlyPut = {
      ...SERIES,
      latency: parseSeriesSelector('grpc_server_handling_seconds{grpc_method="Put"}'),
    };
    expect([...read(`${get}${put(4)}`, onlyPut).latency.values()].map((h) => h.count)).toEqual([4]);
  });

  it('knows gRPC code labels as Go, upper snake case or numbers spell them', () => {
    expect(grpcCodeOf('Canceled')).toBe(Status.CANCELLED);
    expect(grpcCodeOf('DeadlineExceeded')).toBe(Status.DEADLINE_EXCEEDED);
    expect(grpcCodeOf('RESOURCE_EXHAUSTED')).toBe(Status.RESOURCE_EXHAUSTED);
    expect(grpcCodeOf('14')).toBe(Status.UNAVAILABLE);
    expect(grpcCodeOf('Whatever')).toBeUndefined();
    expect(grpcCodeOf(undefined)).toBeUndefined();
  });
});

describe('rebucketing', () => {
  it('spreads counts uniformly within each source bucket and keeps the total', () => {
    const into = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
    rebucketInto([5, 10, 25, Infinity], [10, 4, 6, 3], into);
    expect(sum(into)).toBeCloseTo(23, 9);
    expect(into[bucketOf(2)]).toBeCloseTo(2, 9); // (1, 2] is a fifth of (0, 5]
    expect(into[bucketOf(7)]).toBeCloseTo(2, 9); // (5, 7.5] is half of (5, 10]
    expect(into[bucketOf(12)]).toBeCloseTo(2, 9); // (10, 15] is a third of (10, 25]
    // (20, 30] holds a third of (10, 25] and all of (25, ∞), which goes just above 25 ms
    expect(into[bucketOf(30)]).toBeCloseTo(2 + 3, 9);
    expect(sum(into.slice(bucketOf(31)))).toBe(0);
  });
});
