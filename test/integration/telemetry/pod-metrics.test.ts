import { resolvePoolSpec } from '../../../src/api/resolve.js';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { startBackend, type Backend } from '../../../src/tools/backend/server.js';
import { createResourceCollector, type ResourceCollector } from '../../../src/telemetry/collector.js';
import {
  PodMetricsSource,
  kubePodMetricsApi,
  type PodMetricsApi,
  type PodMetricsSourceOptions,
} from '../../../src/telemetry/pod-metrics.js';
import { ManualTimers } from '../../../src/util/timers.js';
import type { TelemetrySettings } from '../../../src/telemetry/resources.js';
import { createNamespace, kubeConfig, kubectlOk } from '../../support/kube.js';
import {
  registerMetricsApi,
  startMetricsApiServer,
  type MetricsApiServer,
} from '../../support/metrics-api.js';
import { waitFor } from '../../support/wait.js';

/**
 * The metrics.k8s.io source through the real kube-apiserver: a small aggregated server of the
 * tests' own (test/support/metrics-api.ts) registered as the APIService v1beta1.metrics.k8s.io,
 * reached by the aggregator through an ExternalName Service (localhost) with its front-proxy client
 * certificate. The APIService is cluster-wide, so it is deleted before this file ends: other tests'
 * discovery must not meet an unavailable group.
 */

const log = pino({ level: process.env.SIBYL_LOG_LEVEL ?? 'silent' });
const MiB = 1 << 20;
const metricsApiOnly: TelemetrySettings = {
  intervalMs: 500,
  metricsApi: true,
  orca: false,
  orcaIntervalMs: 500,
};

let ns: string;
let server: MetricsApiServer | undefined;
let unregister: (() => Promise<void>) | undefined;
const stops: Array<() => unknown> = [];

beforeAll(async () => {
  ns = await createNamespace('podmetrics');
});

afterAll(async () => {
  for (const s of stops.reverse()) await s();
  await unregister?.();
  await server?.close();
});

function source(discoveryIntervalMs = 180_000, extra: PodMetricsSourceOptions = {}): PodMetricsSource {
  return sourceOn(kubePodMetricsApi(kubeConfig()), { discoveryIntervalMs, ...extra });
}

function sourceOn(api: PodMetricsApi, opts: PodMetricsSourceOptions): PodMetricsSource {
  const src = new PodMetricsSource(api, { log, ...opts });
  stops.push(() => src.stop());
  return src;
}

it('is quietly inactive while the API server does not serve metrics.k8s.io', async () => {
  // The real API through a counter of its calls, on a clock the test moves: ten list intervals pass
  // at once, and every list the source would start is seen the moment it starts.
  const real = kubePodMetricsApi(kubeConfig());
  const calls = { serves: 0, list: 0 };
  const api: PodMetricsApi = {
    serves: () => (calls.serves++, real.serves()),
    list: (namespace) => (calls.list++, real.list(namespace)),
  };
  const clock = new ManualTimers();
  const src = sourceOn(api, { clock, timers: clock });
  src.track(`${ns}/pool`, [{ address: 'p1.localhost:50051', pod: 'p1', namespace: ns }], metricsApiOnly);
  clock.advance(0); // discovery is due at once
  await waitFor(() => src.apiState === 'missing', { what: 'discovery to find no metrics API' });
  clock.advance(10 * metricsApiOnly.intervalMs);
  expect(calls).toEqual({ serves: 1, list: 0 });
  expect(src.stats()).toEqual({ lists: 0, failures: 0, state: 'missing' });
  expect(src.figures(`${ns}/pool`).size).toBe(0);
});

it('serves PodMetrics through the real API server once the APIService is registered', async () => {
  server = await startMetricsApiServer({ service: 'metrics-api', namespace: ns });
  server.put({
    namespace: ns,
    name: 'p1',
    containers: [
      { name: 'app', cpu: '250m', memory: '64Mi' },
      { name: 'sidecar', cpu: '1500000n', memory: '8Mi' },
    ],
  });
  server.put({ namespace: ns, name: 'p2', containers: [{ name: 'app', cpu: '1', memory: '131072Ki' }] });
  unregister = await registerMetricsApi(server, { service: 'metrics-api', namespace: ns });

  // Through kube-apiserver with client-node, as the source will read them.
  const custom = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  const list = (await custom.listNamespacedCustomObject({
    group: 'metrics.k8s.io',
    version: 'v1beta1',
    namespace: ns,
    plural: 'pods',
  })) as { kind: string; items: Array<{ metadata: { name: string } }> };
  expect(list.kind).toBe('PodMetricsList');
  expect(list.items.map((i) => i.metadata.name).sort()).toEqual(['p1', 'p2']);
  // kubectl reads the wire format too.
  const top = await kubectlOk(['top', 'pod', '-n', ns, '--no-headers']);
  expect(top).toMatch(/^p1\s+252m\s+72Mi\s*$/m);
  expect(top).toMatch(/^p2\s+1000m\s+128Mi\s*$/m);
  // The aggregator came as the front proxy, naming the caller.
  const seen = server.requests.filter((r) => r.path === `/apis/metrics.k8s.io/v1beta1/namespaces/${ns}/pods`);
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.every((r) => r.frontProxy && r.user === 'admin')).toBe(true);
});

it('maps PodMetrics of the tracked pods into figures, follows changes, and drops a vanished pod', async () => {
  const api = server as MetricsApiServer;
  const src = source();
  const pool = `${ns}/catalog`;
  const eps = [
    { address: 'p1.localhost:50051', pod: 'p1', namespace: ns },
    { address: 'p2.localhost:50052', pod: 'p2', namespace: ns },
    { address: 'p3.localhost:50053', pod: 'p3', namespace: ns }, // no metrics
  ];
  src.track(pool, eps, metricsApiOnly);
  const f = await waitFor(() => src.figures(pool).size === 2 && src.figures(pool), {
    what: 'figures for p1 and p2',
    timeoutMs: 10_000,
  });
  expect(src.apiState).toBe('available');
  expect(f.get('p1.localhost:50051')).toEqual({
    source: 'metrics-api',
    cpuCores: expect.closeTo(0.2515, 9),
    memoryBytes: 72 * MiB,
    ageMs: expect.any(Number),
  });
  expect(f.get('p2.localhost:50052')).toMatchObject({ cpuCores: 1, memoryBytes: 128 * MiB });
  // The age runs from the sample's timestamp (the fake stamps each list with its time), not from the
  // start of its 15 s window: far younger than that, with room for a loaded machine.
  expect(f.get('p1.localhost:50051')?.ageMs).toBeLessThan(15_000);

  api.put({ namespace: ns, name: 'p2', containers: [{ name: 'app', cpu: '3500m', memory: '1Gi' }] });
  api.remove(ns, 'p1');
  const g = await waitFor(
    () => {
      const m = src.figures(pool);
      return m.get('p2.localhost:50052')?.cpuCores === 3.5 && !m.has('p1.localhost:50051') && m;
    },
    { what: 'p2 at 3.5 cores and p1 gone' },
  );
  expect(g.get('p2.localhost:50052')?.memoryBytes).toBe(1024 * MiB);
  expect(src.stats().failures).toBe(0);
});

it('combines both in the collector: the fresher complete figure wins', async () => {
  const api = server as MetricsApiServer;
  let backend: Backend | undefined = await startBackend({ metricsAddr: '127.0.0.1:0', log });
  stops.push(() => backend?.stop(0));
  const metricsPort = Number(backend.metricsAddress?.split(':').pop());
  // metrics-server's figures lag: measured 20 s ago.
  api.put({
    namespace: ns,
    name: 'b1',
    containers: [{ name: 'app', cpu: '42m', memory: '10Mi' }],
    timestamp: new Date(Date.now() - 20_000),
  });
  api.put({ namespace: ns, name: 'p2', containers: [{ name: 'app', cpu: '700m', memory: '20Mi' }] });
  // No randomness: every target's first collection comes half an interval in, then one per interval.
  const collector: ResourceCollector = createResourceCollector({
    kubeConfig: kubeConfig(),
    log,
    random: () => 0.5,
  });
  stops.push(() => collector.stop());
  const b1 = `b1.localhost:${backend.port}`;
  const telemetry = (prometheus?: { port: number }) =>
    resolvePoolSpec({ telemetry: { interval: '4s', metricsApi: true, orca: false, prometheus } }).telemetry;
  collector.track(
    `${ns}/mixed`,
    [{ address: b1, pod: 'b1', namespace: ns }],
    telemetry({ port: metricsPort }),
  );
  collector.track(
    `${ns}/api-only`,
    [{ address: 'p2.localhost:50052', pod: 'p2', namespace: ns }],
    telemetry(),
  );
  // At 2 s b1's first scrape (memory only: CPU needs the second, at 6 s) and, just after discovery,
  // the PodMetrics list. Until 6 s the metrics API's complete figure for b1 wins, however old.
  const early = await waitFor(
    () => {
      const f = collector.figures(`${ns}/mixed`).get(b1);
      return f?.source === 'metrics-api' && f;
    },
    { what: 'the metrics API figure for b1', timeoutMs: 10_000 },
  );
  expect(early).toMatchObject({ source: 'metrics-api', cpuCores: 0.042, memoryBytes: 10 * MiB });
  expect(early.ageMs).toBeGreaterThanOrEqual(20_000);
  const p2 = await waitFor(() => collector.figures(`${ns}/api-only`).get('p2.localhost:50052'), {
    what: 'a figure for p2',
  });
  expect(p2).toMatchObject({ source: 'metrics-api', cpuCores: 0.7, memoryBytes: 20 * MiB });

  const late = await waitFor(
    () => {
      const f = collector.figures(`${ns}/mixed`).get(b1);
      return f?.source === 'prometheus' && f;
    },
    { what: 'the fresher Prometheus figure for b1 to take over', timeoutMs: 15_000 },
  );
  expect(late.memoryBytes).toBeGreaterThan(MiB);
  expect(late.cpuCores).toBeGreaterThanOrEqual(0);
  // It took over by being fresher than the metrics API's figure, which is at least 20 s old.
  expect(late.ageMs).toBeLessThan(20_000);
  await backend.stop(0);
  backend = undefined;
}, 60_000);

it('goes quiet when the APIService is deleted', async () => {
  const src = source(1000);
  const pool = `${ns}/gone`;
  src.track(pool, [{ address: 'p2.localhost:50052', pod: 'p2', namespace: ns }], metricsApiOnly);
  await waitFor(() => src.figures(pool).size === 1, { what: 'a figure for p2' });
  await unregister?.();
  unregister = undefined;
  await waitFor(() => src.apiState === 'missing', {
    what: 'the source to find the API gone',
    timeoutMs: 10_000,
  });
  await waitFor(() => src.figures(pool).size === 0, { what: 'the figure to age out' });
});
