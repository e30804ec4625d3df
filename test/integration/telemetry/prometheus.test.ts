import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { startBackend, type Backend } from '../../../src/tools/backend/server.js';
import { PrometheusSource } from '../../../src/telemetry/prometheus.js';
import type { TelemetrySettings } from '../../../src/telemetry/resources.js';
import { ManualClock } from '../../../src/util/clock.js';
import { waitFor } from '../../support/wait.js';

/**
 * The Prometheus source against real HTTP servers on loopback: a real `sibyl backend` (its
 * prom-client process metrics), a server whose CPU counter the test drives, and one that never
 * answers. Endpoints are named b1.localhost:PORT as the operator sees loopback backends.
 */

const MiB = 1 << 20;
const log = pino({ level: process.env.SIBYL_LOG_LEVEL ?? 'silent' });

const settings = (
  port: number,
  intervalMs = 500,
  series: { cpuSeries?: string; memorySeries?: string } = {},
): TelemetrySettings =>
  resolvePoolSpec({
    telemetry: { interval: `${intervalMs}ms`, metricsApi: false, prometheus: { port, ...series } },
  }).telemetry;

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

describe('a real sibyl backend', () => {
  let backend: Backend | undefined;
  let src: PrometheusSource | undefined;
  afterEach(async () => {
    src?.stop();
    await backend?.stop(0);
  });

  it('gives plausible CPU and memory, and its figures age out after it stops', async () => {
    backend = await startBackend({ metricsAddr: '127.0.0.1:0', log });
    const metricsPort = Number(backend.metricsAddress?.split(':').pop());
    const address = `b1.localhost:${backend.port}`;
    src = new PrometheusSource({ log });
    const s = src;
    s.track('telemetry/b1', [{ address, pod: 'b1', namespace: 'telemetry' }], settings(metricsPort));

    const f = await waitFor(
      () =>
        s.figures('telemetry/b1').get(address)?.cpuCores !== undefined &&
        s.figures('telemetry/b1').get(address),
      {
        what: 'CPU and memory figures for b1',
        timeoutMs: 10_000,
      },
    );
    expect(f.source).toBe('prometheus');
    expect(f.cpuCores).toBeGreaterThanOrEqual(0);
    expect(f.cpuCores).toBeLessThan(16);
    expect(f.memoryBytes).toBeGreaterThan(MiB);
    expect(f.ageMs).toBeLessThanOrEqual(3 * 500); // kept while younger than three intervals
    expect(s.stats()).toMatchObject({ failures: 0, targets: 1 });

    await backend.stop(0);
    backend = undefined;
    const ages: number[] = [];
    await waitFor(
      () => {
        const g = s.figures('telemetry/b1').get(address);
        if (g) ages.push(g.ageMs);
        return g === undefined;
      },
      { what: 'the figures to age out', timeoutMs: 10_000, intervalMs: 50 },
    );
    // Kept while younger than three intervals (1.5 s), growing older (no scrape succeeds: failures are
    // counted), then dropped. How long after the stop that was depends on the last scrape's age then.
    expect(ages.length).toBeGreaterThanOrEqual(2);
    expect(ages.at(-1)).toBeGreaterThan(ages[0] as number);
    expect(Math.max(...ages)).toBeLessThanOrEqual(3 * 500);
    expect(s.stats().failures).toBeGreaterThan(0);
  });
});

describe('a server whose CPU counter the test drives', () => {
  let server: Server | undefined;
  let src: PrometheusSource | undefined;
  afterEach(async () => {
    src?.stop();
    if (server) await close(server);
  });

  it('measures the counter’s rate in cores between scrapes', async () => {
    // The source's clock moves only while this server answers, half an interval on each side of reading
    // the counter: the midpoint of the request, which the source stamps the sample with, is then exactly
    // when the counter was read, so the rate comes out exact however loaded the machine is.
    const clock = new ManualClock(1_000_000);
    const STEP_MS = 250;
    let cores = 0.5;
    let seconds = 100;
    let readAt = clock.now();
    let requests = 0;
    server = createServer((_req, res) => {
      requests++;
      clock.advance(STEP_MS / 2);
      seconds += (cores * (clock.now() - readAt)) / 1000;
      readAt = clock.now();
      clock.advance(STEP_MS / 2);
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        .end(
          [
            '# HELP app_cpu_seconds_total CPU.',
            '# TYPE app_cpu_seconds_total counter',
            `app_cpu_seconds_total{mode="user"} ${seconds * 0.75}`,
            `app_cpu_seconds_total{mode="system"} ${seconds * 0.25}`,
            '# TYPE app_rss_bytes gauge',
            `app_rss_bytes ${96 * MiB}`,
            '',
          ].join('\n'),
        );
    });
    const port = await listen(server);
    src = new PrometheusSource({ log, clock });
    const s = src;
    const address = 'b2.localhost:50051';
    s.track(
      'telemetry/b2',
      [{ address, namespace: 'telemetry' }],
      settings(port, 250, { cpuSeries: 'app_cpu_seconds_total', memorySeries: 'app_rss_bytes' }),
    );
    const first = await waitFor(
      () =>
        s.figures('telemetry/b2').get(address)?.cpuCores !== undefined &&
        s.figures('telemetry/b2').get(address),
      {
        what: 'a CPU figure',
      },
    );
    expect(first.cpuCores).toBeCloseTo(0.5, 9);
    expect(first.memoryBytes).toBe(96 * MiB);

    cores = 2;
    // Three more scrapes: one may have been under way at the change, its counter read at the old rate;
    // the newest rate then ends at a reading after it.
    const scrapes = s.stats().scrapes;
    await waitFor(() => s.stats().scrapes >= scrapes + 3, { what: 'three scrapes after the change' });
    expect(s.figures('telemetry/b2').get(address)?.cpuCores).toBeCloseTo(2, 9);
    expect(requests).toBeGreaterThan(2);
  });

  it('times out a server that never answers, below the interval, and never throws', async () => {
    const hung: Array<() => void> = [];
    server = createServer((_req, res) => hung.push(() => res.destroy()));
    const port = await listen(server);
    src = new PrometheusSource({ log });
    const s = src;
    s.track('telemetry/b3', [{ address: 'b3.localhost:50051', namespace: 'telemetry' }], settings(port, 400));
    await waitFor(() => s.stats().failures >= 2, { what: 'two timed-out scrapes', timeoutMs: 5000 });
    // 400 ms interval → 320 ms timeout: a second scrape was let through after the first was cut off.
    expect(hung.length).toBeGreaterThanOrEqual(2);
    expect(s.figures('telemetry/b3').size).toBe(0);
    for (const h of hung) h();
  });

  it('reports a refused connection and an HTTP error as failures', async () => {
    server = createServer((_req, res) => res.writeHead(503).end('down'));
    const port = await listen(server);
    src = new PrometheusSource({ log });
    const s = src;
    s.track('telemetry/b4', [{ address: 'b4.localhost:1', namespace: 'telemetry' }], settings(port, 300));
    s.track('telemetry/b5', [{ address: 'b5.localhost:1', namespace: 'telemetry' }], settings(1, 300));
    await waitFor(() => s.stats().failures >= 4, { what: 'failed scrapes' });
    expect(s.figures('telemetry/b4').size + s.figures('telemetry/b5').size).toBe(0);
  });
});
