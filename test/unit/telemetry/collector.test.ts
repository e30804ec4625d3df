import type { Logger } from 'pino';
import {
  ResourceCollector,
  createResourceCollector,
  preferFigures,
} from '../../../src/telemetry/collector.js';
import { PodMetricsSource } from '../../../src/telemetry/pod-metrics.js';
import { PrometheusSource } from '../../../src/telemetry/prometheus.js';
import type {
  ResourceEndpoint,
  ResourceFigures,
  ResourceSource,
  TelemetrySettings,
} from '../../../src/telemetry/resources.js';
import { seededRandom } from '../../../src/util/clock.js';
import { ManualTimers } from '../../../src/util/timers.js';

const silent = (() => {
  const log = { warn() {}, info() {}, debug() {}, error() {} } as Record<string, unknown>;
  log.child = () => log;
  return log as unknown as Logger;
})();

class FixedSource implements ResourceSource {
  calls: string[] = [];
  constructor(private readonly figs: Record<string, ResourceFigures>) {}
  track(poolKey: string, _e: readonly ResourceEndpoint[], _s: TelemetrySettings): void {
    this.calls.push(`track ${poolKey}`);
  }
  untrack(poolKey: string): void {
    this.calls.push(`untrack ${poolKey}`);
  }
  figures(): ReadonlyMap<string, ResourceFigures> {
    return new Map(Object.entries(this.figs));
  }
  stop(): void {
    this.calls.push('stop');
  }
}

describe('choosing between figures', () => {
  const prom = (ageMs: number, cpu?: number, mem?: number): ResourceFigures => ({
    source: 'prometheus',
    ageMs,
    ...(cpu !== undefined ? { cpuCores: cpu } : {}),
    ...(mem !== undefined ? { memoryBytes: mem } : {}),
  });
  const api = (ageMs: number, cpu?: number, mem?: number): ResourceFigures => ({
    ...prom(ageMs, cpu, mem),
    source: 'metrics-api',
  });

  it('prefers the fresher of two complete figures', () => {
    expect(preferFigures(prom(1000, 1, 1), api(20_000, 2, 2)).source).toBe('prometheus');
    expect(preferFigures(prom(9000, 1, 1), api(2000, 2, 2)).source).toBe('metrics-api');
    expect(preferFigures(api(2000, 2, 2), prom(9000, 1, 1)).source).toBe('metrics-api');
  });

  it('prefers the one with more figures, whatever its age', () => {
    expect(preferFigures(prom(100, undefined, 1), api(20_000, 2, 2)).source).toBe('metrics-api');
    expect(preferFigures(api(100, 2, undefined), prom(9000, 1, 1)).source).toBe('prometheus');
  });

  it('keeps the first on a tie', () => {
    expect(preferFigures(prom(5, 1, 1), api(5, 2, 2)).source).toBe('prometheus');
  });
});

describe('ResourceCollector', () => {
  it('passes every call to each source and merges figures by address', () => {
    const a = new FixedSource({
      'x:1': { source: 'prometheus', ageMs: 100, cpuCores: 1, memoryBytes: 1 },
      'y:1': { source: 'prometheus', ageMs: 100, memoryBytes: 5 },
    });
    const b = new FixedSource({
      'x:1': { source: 'metrics-api', ageMs: 15_000, cpuCores: 2, memoryBytes: 2 },
      'y:1': { source: 'metrics-api', ageMs: 15_000, cpuCores: 2, memoryBytes: 2 },
      'z:1': { source: 'metrics-api', ageMs: 15_000, cpuCores: 3, memoryBytes: 3 },
    });
    const c = new ResourceCollector([a, b]);
    c.track('p', [], { intervalMs: 1000, metricsApi: true, orca: false, orcaIntervalMs: 1000 });
    c.untrack('q');
    c.stop();
    for (const s of [a, b]) expect(s.calls).toEqual(['track p', 'untrack q', 'stop']);
    const f = c.figures('p');
    expect(f.get('x:1')?.source).toBe('prometheus');
    expect(f.get('y:1')?.source).toBe('metrics-api');
    expect(f.get('z:1')?.cpuCores).toBe(3);
  });

  it('is built with Prometheus first and the metrics API when there is one', () => {
    const timers = new ManualTimers();
    const opts = { timers, clock: timers, random: seededRandom(1), log: silent };
    const promOnly = createResourceCollector(opts);
    expect(promOnly.sources.map((s) => s.constructor)).toEqual([PrometheusSource]);
    const both = createResourceCollector({
      ...opts,
      metricsApi: { serves: async () => false, list: async () => [] },
    });
    expect(both.sources.map((s) => s.constructor)).toEqual([PrometheusSource, PodMetricsSource]);
    both.stop();
    promOnly.stop();
  });
});
