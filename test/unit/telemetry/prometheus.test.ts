import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { PrometheusSource } from '../../../src/telemetry/prometheus.js';
import type { TelemetrySettings } from '../../../src/telemetry/resources.js';
import {
  STALE_INTERVALS,
  agedFigures,
  cpuCoresBetween,
  readScrape,
  scrapeTimeoutMs,
  scrapeUrl,
} from '../../../src/telemetry/scrape.js';
import type { Scraper } from '../../../src/telemetry/scrape-http.js';
import { parseSeriesSelector } from '../../../src/telemetry/series.js';
import type { LoadReport } from '../../../src/control/messages.js';
import { Status } from '../../../src/grpc/status.js';
import { bucketOf } from '../../../src/telemetry/histogram.js';
import { BackendMetrics } from '../../../src/tools/backend/metrics.js';
import { Slots } from '../../../src/tools/backend/slots.js';
import { seededRandom } from '../../../src/util/clock.js';
import { isSibylError } from '../../../src/util/errors.js';
import { ManualTimers } from '../../../src/util/timers.js';

const CALL_SERIES = {
  latency: parseSeriesSelector('grpc_server_handling_seconds'),
  handled: parseSeriesSelector('grpc_server_handled_total'),
  started: parseSeriesSelector('grpc_server_started_total'),
};
const DEFAULT_SERIES = {
  cpu: parseSeriesSelector('process_cpu_seconds_total'),
  memory: parseSeriesSelector('process_resident_memory_bytes'),
  ...CALL_SERIES,
};

function exposition(cpuSeconds: number, memoryBytes: number): string {
  return [
    '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.',
    '# TYPE process_cpu_seconds_total counter',
    `process_cpu_seconds_total ${cpuSeconds}`,
    '',
    '# HELP process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE process_resident_memory_bytes gauge',
    `process_resident_memory_bytes ${memoryBytes}`,
    '',
  ].join('\n');
}

interface LogLine {
  level: string;
  fields: unknown;
  msg: unknown;
}
function recordingLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (fields: unknown, msg?: unknown): void => {
      lines.push({ level, fields, msg });
    };
  const log = { warn: at('warn'), info: at('info'), debug: at('debug'), error: at('error') } as Record<
    string,
    unknown
  >;
  log.child = () => log;
  return { log: log as unknown as Logger, lines };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

/**
 * Moves the manual clock in small steps, letting scrapes finish at each: a scrape resolves only after
 * advance() returns, so a big step would stamp samples later than their counters were read.
 */
async function runFor(timers: ManualTimers, ms: number, stepMs = 2): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    timers.advance(Math.min(stepMs, ms - t));
    await flush();
  }
}

describe('series selectors', () => {
  it('reads a plain name and label matchers', () => {
    expect(parseSeriesSelector('process_cpu_seconds_total')).toEqual({
      name: 'process_cpu_seconds_total',
      labels: {},
    });
    expect(parseSeriesSelector('cpu_seconds_total{mode="user", cpu="0"}')).toEqual({
      name: 'cpu_seconds_total',
      labels: { mode: 'user', cpu: '0' },
    });
    expect(parseSeriesSelector('x{path="a,\\"b\\""}').labels).toEqual({ path: 'a,"b"' });
    expect(parseSeriesSelector('x{}').labels).toEqual({});
  });

  it.each(['', '1abc', 'x{mode=user}', 'x{mode!="a"}', 'x{', 'x y'])('refuses %j', (text) => {
    expect(() => parseSeriesSelector(text)).toThrow();
    try {
      parseSeriesSelector(text);
    } catch (e) {
      expect(isSibylError(e, 'ERR_CONFIG_INVALID')).toBe(true);
    }
  });
});

describe('reading an exposition', () => {
  it('reads the counter and the gauge', () => {
    expect(readScrape(exposition(12.5, 52428800), DEFAULT_SERIES, 7)).toEqual({
      at: 7,
      cpuSeconds: 12.5,
      memoryBytes: 52428800,
    });
  });

  it('reads what prom-client really exposes', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const s = readScrape(await registry.metrics(), DEFAULT_SERIES, 0);
    expect(s.cpuSeconds).toBeGreaterThan(0);
    expect(s.memoryBytes).toBeGreaterThan(1 << 20);
  });

  it('sums a labelled series unless labels are selected, and skips what is not a plain value', () => {
    const text = [
      '# TYPE node_cpu_seconds_total counter',
      'node_cpu_seconds_total{cpu="0",mode="user"} 10',
      'node_cpu_seconds_total{cpu="0",mode="system"} 2',
      'node_cpu_seconds_total{cpu="1",mode="user"} 5',
      'node_cpu_seconds_total{cpu="1",mode="idle"} NaN',
      '# TYPE mem histogram',
      'mem_bucket{le="+Inf"} 3',
      'mem_sum 9',
      'mem_count 3',
      '',
    ].join('\n');
    const all = readScrape(
      text,
      {
        cpu: parseSeriesSelector('node_cpu_seconds_total'),
        memory: parseSeriesSelector('mem'),
        ...CALL_SERIES,
      },
      0,
    );
    expect(all.cpuSeconds).toBe(17);
    expect(all.memoryBytes).toBeUndefined();
    const user = readScrape(
      text,
      {
        cpu: parseSeriesSelector('node_cpu_seconds_total{mode="user"}'),
        memory: parseSeriesSelector('x'),
        ...CALL_SERIES,
      },
      0,
    );
    expect(user.cpuSeconds).toBe(15);
  });

  it('keeps the last sample of an exposition without a final newline', () => {
    expect(readScrape(exposition(1, 2).trimEnd(), DEFAULT_SERIES, 0).memoryBytes).toBe(2);
  });

  it('reads OpenMetrics-style counters (family without _total) and ignores # EOF', () => {
    const text = [
      '# TYPE process_cpu_seconds counter',
      'process_cpu_seconds_total 3.5',
      '# TYPE process_resident_memory_bytes gauge',
      'process_resident_memory_bytes 1e6',
      '# EOF',
      '',
    ].join('\n');
    expect(readScrape(text, DEFAULT_SERIES, 0)).toEqual({ at: 0, cpuSeconds: 3.5, memoryBytes: 1e6 });
  });

  it('says undefined for a series that is not there, and throws on a malformed exposition', () => {
    expect(readScrape('up 1\n', DEFAULT_SERIES, 0)).toEqual({
      at: 0,
      cpuSeconds: undefined,
      memoryBytes: undefined,
    });
    expect(() => readScrape('# TYPE a counter gauge\n', DEFAULT_SERIES, 0)).toThrow();
  });
});

describe('CPU rate between scrapes', () => {
  it('is Δcpu seconds over Δwall seconds', () => {
    expect(cpuCoresBetween({ at: 1000, cpuSeconds: 10 }, { at: 3000, cpuSeconds: 11 })).toBe(0.5);
    expect(cpuCoresBetween({ at: 0, cpuSeconds: 0 }, { at: 500, cpuSeconds: 1 })).toBe(2);
    expect(cpuCoresBetween({ at: 0, cpuSeconds: 4 }, { at: 500, cpuSeconds: 4 })).toBe(0);
  });

  it('has no rate without two samples, when time stands still, across a reset or a long gap', () => {
    expect(cpuCoresBetween(undefined, { at: 1, cpuSeconds: 1 })).toBeUndefined();
    expect(cpuCoresBetween({ at: 0 }, { at: 1000, cpuSeconds: 1 })).toBeUndefined();
    expect(cpuCoresBetween({ at: 0, cpuSeconds: 1 }, { at: 1000 })).toBeUndefined();
    expect(cpuCoresBetween({ at: 1000, cpuSeconds: 1 }, { at: 1000, cpuSeconds: 2 })).toBeUndefined();
    expect(cpuCoresBetween({ at: 2000, cpuSeconds: 1 }, { at: 1000, cpuSeconds: 2 })).toBeUndefined();
    expect(cpuCoresBetween({ at: 0, cpuSeconds: 50 }, { at: 1000, cpuSeconds: 0.2 })).toBeUndefined();
    expect(cpuCoresBetween({ at: 0, cpuSeconds: 1 }, { at: 4000, cpuSeconds: 2 }, 3000)).toBeUndefined();
    expect(cpuCoresBetween({ at: 0, cpuSeconds: 1 }, { at: 3000, cpuSeconds: 2 }, 3000)).toBeCloseTo(1 / 3);
  });
});

describe('ageing', () => {
  it('reports the age and drops figures older than three intervals', () => {
    const f = { at: 1000, cpuCores: 0.5, memoryBytes: 100 };
    expect(agedFigures(f, 1000, 1000, 'prometheus')).toEqual({
      source: 'prometheus',
      ageMs: 0,
      cpuCores: 0.5,
      memoryBytes: 100,
    });
    expect(agedFigures(f, 2500, 1000, 'prometheus')?.ageMs).toBe(1500);
    expect(agedFigures(f, 1000 + STALE_INTERVALS * 1000, 1000, 'prometheus')?.ageMs).toBe(3000);
    expect(agedFigures(f, 1001 + STALE_INTERVALS * 1000, 1000, 'prometheus')).toBeUndefined();
  });

  it('has nothing to say for empty figures; omits a missing figure', () => {
    expect(agedFigures(undefined, 0, 1000, 'prometheus')).toBeUndefined();
    expect(agedFigures({ at: 0 }, 0, 1000, 'prometheus')).toBeUndefined();
    expect(agedFigures({ at: 0, memoryBytes: 5 }, 10, 1000, 'prometheus')).toEqual({
      source: 'prometheus',
      ageMs: 10,
      memoryBytes: 5,
    });
  });

  it('never reports a negative age', () => {
    expect(agedFigures({ at: 100, memoryBytes: 1 }, 50, 1000, 'prometheus')?.ageMs).toBe(0);
  });
});

describe('scrape targets', () => {
  it('builds the URL from the endpoint host, the metrics port and the path', () => {
    expect(scrapeUrl('b1.localhost:50051', 9090, '/metrics')).toEqual({
      url: 'http://127.0.0.1:9090/metrics',
    });
    expect(scrapeUrl('localhost:50051', 9090, '/metrics')).toEqual({ url: 'http://127.0.0.1:9090/metrics' });
    expect(scrapeUrl('10.1.2.3:50051', '9102', '/stats/prometheus')).toEqual({
      url: 'http://10.1.2.3:9102/stats/prometheus',
    });
    expect(scrapeUrl('[fd00::1]:50051', 9090, '/m')).toEqual({ url: 'http://[fd00::1]:9090/m' });
    expect(scrapeUrl('backend.shop.svc', 9090, 'metrics')).toEqual({
      url: 'http://backend.shop.svc:9090/metrics',
    });
  });

  it('skips a port name and nonsense, saying why', () => {
    expect(scrapeUrl('10.1.2.3:50051', 'metrics', '/metrics')).toEqual({
      skip: expect.stringContaining('is a name'),
    });
    expect(scrapeUrl('10.1.2.3:50051', 70000, '/metrics')).toEqual({
      skip: expect.stringContaining('range'),
    });
    expect(scrapeUrl('a:b:c', 9090, '/metrics')).toEqual({ skip: expect.stringContaining('host:port') });
  });

  it('times a scrape out before the next one is due', () => {
    expect(scrapeTimeoutMs(1000)).toBe(800);
    expect(scrapeTimeoutMs(10_000)).toBe(8000);
    expect(scrapeTimeoutMs(60_000)).toBe(10_000);
  });
});

describe('PrometheusSource', () => {
  const settings = (over: Partial<NonNullable<TelemetrySettings['prometheus']>> = {}): TelemetrySettings =>
    resolvePoolSpec({ telemetry: { interval: '1s', metricsApi: false, prometheus: { port: 9090, ...over } } })
      .telemetry;
  const endpoints = (...hosts: string[]) =>
    hosts.map((h) => ({ address: `${h}:50051`, pod: h.split('.')[0], namespace: 'shop' }));

  /** Backends whose CPU counter runs at `cores` against the manual clock. */
  function fakeBackends(timers: ManualTimers) {
    const cores = new Map<string, number>();
    const failing = new Set<string>();
    const calls: Array<{ url: string; timeoutMs: number }> = [];
    const scrape: Scraper = async (url, timeoutMs) => {
      calls.push({ url, timeoutMs });
      if (failing.has(url)) throw new Error('connect ECONNREFUSED');
      const c = cores.get(url) ?? 0.25;
      return exposition((c * timers.now()) / 1000, 64 << 20);
    };
    return { cores, failing, calls, scrape };
  }

  it('scrapes every endpoint each interval; memory at once, CPU from the second scrape', async () => {
    const timers = new ManualTimers(10_000);
    const b = fakeBackends(timers);
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(1),
      scrape: b.scrape,
      log: recordingLog().log,
    });
    b.cores.set('http://127.0.0.1:9090/metrics', 0.25);
    b.cores.set('http://10.0.0.7:9091/metrics', 1.5);
    src.track(
      'shop/catalog',
      [...endpoints('b1.localhost'), { address: '10.0.0.7:50051', namespace: 'shop' }],
      settings({ port: 9090 }),
    );
    expect(src.figures('shop/catalog').size).toBe(0);

    await runFor(timers, 1000); // every target's first scrape falls within the first interval
    const first = src.figures('shop/catalog');
    expect(first.get('b1.localhost:50051')).toEqual({
      source: 'prometheus',
      ageMs: expect.any(Number),
      memoryBytes: 64 << 20,
    });
    expect(b.calls.map((c) => c.url).sort()).toEqual([
      'http://10.0.0.7:9090/metrics',
      'http://127.0.0.1:9090/metrics',
    ]);
    expect(b.calls.every((c) => c.timeoutMs === 800)).toBe(true);

    await runFor(timers, 1100);
    const second = src.figures('shop/catalog');
    expect(second.get('b1.localhost:50051')?.cpuCores).toBeCloseTo(0.25, 2);
    expect(second.get('10.0.0.7:50051')?.cpuCores).toBeCloseTo(0.25, 2); // port 9090 was scraped, not 9091
    expect(second.get('b1.localhost:50051')?.ageMs).toBeLessThanOrEqual(1100);
    expect(src.stats()).toMatchObject({ failures: 0, targets: 2 });
    expect(src.stats().scrapes).toBeGreaterThanOrEqual(4);
    src.stop();
    expect(timers.size).toBe(0);
  });

  it('spreads scrapes with jitter and keeps to about one per interval', async () => {
    const timers = new ManualTimers();
    const b = fakeBackends(timers);
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(7),
      scrape: b.scrape,
      log: recordingLog().log,
    });
    const eps = Array.from({ length: 20 }, (_, i) => ({ address: `10.0.0.${i}:50051`, namespace: 'shop' }));
    src.track('p', eps, settings());
    const firsts = new Map<string, number>();
    for (let t = 0; t < 100; t++) {
      const before = b.calls.length;
      timers.advance(10);
      await flush();
      for (const c of b.calls.slice(before)) if (!firsts.has(c.url)) firsts.set(c.url, timers.now());
    }
    // 20 targets, first scrapes spread over the first second rather than all at once
    expect(firsts.size).toBe(20);
    expect(new Set(firsts.values()).size).toBeGreaterThan(10);
    for (let t = 0; t < 900; t++) {
      timers.advance(10);
      await flush();
    }
    // ten seconds: about ten scrapes each (±10% jitter)
    expect(b.calls.length).toBeGreaterThanOrEqual(20 * 9);
    expect(b.calls.length).toBeLessThanOrEqual(20 * 11);
    src.stop();
  });

  it('runs at most `concurrency` scrapes at once and skips a turn for a target still busy', async () => {
    const timers = new ManualTimers();
    let inFlight = 0;
    let maxInFlight = 0;
    let started = 0;
    const release: Array<() => void> = [];
    const scrape: Scraper = () => {
      started++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise((resolve) =>
        release.push(() => {
          inFlight--;
          resolve(exposition(1, 2));
        }),
      );
    };
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(3),
      scrape,
      concurrency: 2,
      log: recordingLog().log,
    });
    src.track(
      'p',
      endpoints('a.localhost', 'b.localhost', 'c.localhost', 'd.localhost', 'e.localhost'),
      settings(),
    );
    timers.advance(1000);
    await flush();
    expect(started).toBe(2);
    timers.advance(5000); // five more intervals: nothing new starts, each target is queued at most once
    await flush();
    expect(started).toBe(2);
    while (release.length > 0) {
      release.shift()?.();
      await flush();
    }
    expect(maxInFlight).toBe(2);
    expect(started).toBe(5); // the other three, once each
    src.stop();
  });

  it('counts and logs failures, never throws, ages figures out, and says when scrapes recover', async () => {
    const timers = new ManualTimers();
    const b = fakeBackends(timers);
    const { log, lines } = recordingLog();
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(5),
      scrape: b.scrape,
      log,
    });
    src.track('p', endpoints('a.localhost'), settings());
    await runFor(timers, 3000);
    expect(src.figures('p').get('a.localhost:50051')?.cpuCores).toBeCloseTo(0.25, 2);

    b.failing.add('http://127.0.0.1:9090/metrics');
    const ages: number[] = [];
    for (let i = 0; i < 5; i++) {
      timers.advance(1000);
      await flush();
      const f = src.figures('p').get('a.localhost:50051');
      if (f) ages.push(f.ageMs);
    }
    expect(ages.length).toBeGreaterThanOrEqual(2);
    expect(ages).toEqual([...ages].sort((x, y) => x - y)); // growing
    expect(src.figures('p').size).toBe(0); // gone after three intervals
    expect(src.stats().failures).toBeGreaterThanOrEqual(4);
    expect(lines.filter((l) => l.level === 'warn' && l.msg === 'scrape failed')).toHaveLength(1);

    b.failing.clear();
    await runFor(timers, 3000);
    expect(lines.some((l) => l.level === 'info' && l.msg === 'scrapes recovered')).toBe(true);
    const back = src.figures('p').get('a.localhost:50051');
    expect(back?.memoryBytes).toBe(64 << 20);
    expect(back?.cpuCores).toBeCloseTo(0.25, 2);
    src.stop();
  });

  it('treats a malformed exposition or one without the series as a failure', async () => {
    const timers = new ManualTimers();
    let body = 'garbage line with { brace\n';
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(2),
      scrape: async () => body,
      log: recordingLog().log,
    });
    src.track('p', endpoints('a.localhost'), settings());
    timers.advance(1000);
    await flush();
    expect(src.stats()).toMatchObject({ scrapes: 1, failures: 1 });
    body = 'up 1\n';
    timers.advance(1000);
    await flush();
    expect(src.stats()).toMatchObject({ scrapes: 2, failures: 2 });
    expect(src.figures('p').size).toBe(0);
    src.stop();
  });

  it('does not take a counter reset for negative CPU', async () => {
    const timers = new ManualTimers();
    const readings = [100, 101, 0.5, 1];
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: () => 0.5, // no jitter: exactly one scrape per interval
      scrape: async () => exposition(readings.shift() ?? 0, 1),
      log: recordingLog().log,
    });
    src.track('p', endpoints('a.localhost'), settings());
    const cpu: Array<number | undefined> = [];
    for (let i = 0; i < 4; i++) {
      timers.advance(1000);
      await flush();
      cpu.push(src.figures('p').get('a.localhost:50051')?.cpuCores);
    }
    expect(cpu).toEqual([undefined, 1, undefined, 0.5]);
    src.stop();
  });

  it('skips a port name with one warning, and follows changes of endpoints and settings', async () => {
    const timers = new ManualTimers();
    const b = fakeBackends(timers);
    const { log, lines } = recordingLog();
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(9),
      scrape: b.scrape,
      log,
    });
    src.track('p', endpoints('a.localhost'), settings({ port: 'metrics' }));
    src.track('p', endpoints('a.localhost'), settings({ port: 'metrics' }));
    timers.advance(3000);
    await flush();
    expect(b.calls).toHaveLength(0);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(src.figures('p').size).toBe(0);

    src.track('p', endpoints('a.localhost', 'b.localhost'), settings({ port: 9100 }));
    timers.advance(1000);
    await flush();
    expect(new Set(b.calls.map((c) => c.url))).toEqual(new Set(['http://127.0.0.1:9100/metrics']));
    expect(src.figures('p').size).toBe(2);

    src.track('p', endpoints('b.localhost'), settings({ port: 9100, path: '/m' }));
    expect(src.figures('p').size).toBe(0); // the new target starts over
    expect(src.stats().targets).toBe(1);
    b.calls.length = 0;
    timers.advance(1000);
    await flush();
    expect(b.calls.map((c) => c.url)).toEqual(['http://127.0.0.1:9100/m']);
    expect([...src.figures('p').keys()]).toEqual(['b.localhost:50051']);

    src.track('p', endpoints('b.localhost'), { ...settings(), prometheus: undefined }); // Prometheus off
    expect(src.stats().targets).toBe(0);
    expect(timers.size).toBe(0);
    src.track('p', endpoints('b.localhost'), settings({ cpuSeries: 'bad{' }));
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(2);
    src.untrack('p');
    src.stop();
    src.track('p', endpoints('b.localhost'), settings());
    expect(timers.size).toBe(0);
  });

  it('drops the answer of a scrape whose target went away meanwhile', async () => {
    const timers = new ManualTimers();
    let release: (() => void) | undefined;
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(4),
      scrape: (_url, _t, signal) =>
        new Promise((resolve, reject) => {
          release = () => resolve(exposition(1, 2));
          signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
      log: recordingLog().log,
    });
    src.track('p', endpoints('a.localhost'), settings());
    timers.advance(1000);
    await flush();
    src.untrack('p');
    release?.();
    await flush();
    expect(src.figures('p').size).toBe(0);
    expect(src.stats()).toEqual({ scrapes: 0, failures: 0, targets: 0 });
  });

  it('counts scrapes on a registry', async () => {
    const timers = new ManualTimers();
    const registry = new Registry();
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: seededRandom(1),
      scrape: async () => exposition(1, 2),
      registry,
      log: recordingLog().log,
    });
    src.track('p', endpoints('a.localhost'), settings());
    timers.advance(1000);
    await flush();
    expect(await registry.metrics()).toContain(
      'sibyl_telemetry_collections_total{source="prometheus",result="ok"} 1',
    );
    src.stop();
  });

  it("reports each endpoint's calls since its last scrape as the server side, from the second scrape on", async () => {
    const timers = new ManualTimers();
    const metrics = new BackendMetrics(new Slots(0), { defaultMetrics: false });
    let down = false;
    const reports: LoadReport[] = [];
    const src = new PrometheusSource({
      timers,
      clock: timers,
      random: () => 0.5, // no jitter: one scrape per interval
      scrape: async () => {
        if (down) throw new Error('connect ECONNREFUSED');
        return metrics.registry.metrics();
      },
      log: recordingLog().log,
      onServed: (r) => reports.push(r),
    });
    const serve = (n: number, code: number, seconds: number) => {
      for (let i = 0; i < n; i++) {
        metrics.callStarted('Echo');
        metrics.callHandled('Echo', code, seconds);
      }
    };
    src.track('shop/cart', endpoints('a.localhost'), settings());
    serve(5, Status.OK, 0.002);
    timers.advance(1000); // first scrape: a baseline
    await flush();
    expect(reports).toEqual([]);
    serve(30, Status.OK, 0.004);
    serve(10, Status.UNAVAILABLE, 0.001);
    metrics.callStarted('Echo'); // one still running
    timers.advance(1000);
    await flush();
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ routerId: 'prometheus', intervalMs: 1000 });
    expect(reports[0]?.endpoints).toEqual([
      expect.objectContaining({
        pool: 'shop/cart',
        address: 'a.localhost:50051',
        calls: 40,
        errors: { [Status.UNAVAILABLE]: 10 },
        inflight: 1,
      }),
    ]);
    expect(reports[0]?.endpoints[0]?.latencyCounts[bucketOf(4)]).toBe(30);
    // a quiet interval is reported too: the endpoint is alive and served nothing
    timers.advance(1000);
    await flush();
    expect(reports[1]?.endpoints[0]).toMatchObject({ calls: 0 });
    // after an outage longer than three intervals, the next scrape is a baseline again: its increase
    // would be counted as fresh in the fleet's window though most of it is older
    down = true;
    timers.advance(4000);
    await flush();
    down = false;
    serve(100, Status.OK, 0.002);
    timers.advance(1000);
    await flush();
    expect(reports).toHaveLength(2);
    timers.advance(1000);
    await flush();
    expect(reports).toHaveLength(3);
    expect(reports[2]?.endpoints[0]).toMatchObject({ calls: 0 });
    src.stop();
  });
});
