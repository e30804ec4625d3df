import type { Logger } from 'pino';
import {
  PodMetricsSource,
  agedPodFigures,
  podFigures,
  type PodMetrics,
  type PodMetricsApi,
} from '../../../src/telemetry/pod-metrics.js';
import type { TelemetrySettings } from '../../../src/telemetry/resources.js';
import { seededRandom } from '../../../src/util/clock.js';
import { ManualTimers } from '../../../src/util/timers.js';

const WALL0 = Date.parse('2026-01-01T00:00:00Z');

function pm(
  name: string,
  containers: Array<[string | undefined, string | undefined]>,
  ts?: string,
  namespace = 'shop',
): PodMetrics {
  return {
    metadata: { name, namespace },
    timestamp: ts,
    window: '15s',
    containers: containers.map(([cpu, memory], i) => ({ name: `c${i}`, usage: { cpu, memory } })),
  };
}

function recordingLog(): { log: Logger; lines: Array<{ level: string; msg: unknown }> } {
  const lines: Array<{ level: string; msg: unknown }> = [];
  const at = (level: string) => (a: unknown, b?: unknown) => {
    lines.push({ level, msg: typeof a === 'string' ? a : b });
  };
  const log = { warn: at('warn'), info: at('info'), debug: at('debug'), error: at('error') } as Record<
    string,
    unknown
  >;
  log.child = () => log;
  return { log: log as unknown as Logger, lines };
}

const flush = () => new Promise<void>((r) => setImmediate(r));
async function runFor(timers: ManualTimers, ms: number, stepMs = 50): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    timers.advance(Math.min(stepMs, ms - t));
    await flush();
  }
}

describe('PodMetrics → figures', () => {
  it('sums the containers: CPU in cores, memory in bytes', () => {
    const f = podFigures(
      pm(
        'p',
        [
          ['250m', '64Mi'],
          ['1500000n', '123456Ki'],
        ],
        '2026-01-01T00:00:00Z',
      ),
      WALL0 + 4000,
    );
    expect(f?.cpuCores).toBeCloseTo(0.2515, 12);
    expect(f?.memoryBytes).toBe(64 * 2 ** 20 + 123456 * 1024);
    expect(f?.lagMs).toBe(4000);
  });

  it('leaves out a figure a container lacks or writes unreadably, rather than understating it', () => {
    expect(
      podFigures(
        pm('p', [
          ['250m', '64Mi'],
          [undefined, '1Mi'],
        ]),
        WALL0,
      ),
    ).toEqual({ memoryBytes: 65 * 2 ** 20, lagMs: 0 });
    expect(
      podFigures(
        pm('p', [
          ['250m', 'lots'],
          ['1', '1Mi'],
        ]),
        WALL0,
      ),
    ).toEqual({ cpuCores: 1.25, lagMs: 0 });
    expect(podFigures(pm('p', [[undefined, undefined]]), WALL0)).toBeUndefined();
    expect(podFigures(pm('p', []), WALL0)).toBeUndefined();
  });

  it('measures the lag behind the timestamp, never below zero', () => {
    expect(podFigures(pm('p', [['1', '1']], '2026-01-01T00:00:10Z'), WALL0)?.lagMs).toBe(0);
    expect(podFigures(pm('p', [['1', '1']], 'not a time'), WALL0)?.lagMs).toBe(0);
  });

  it('ages from the list, adding the lag, and drops lists older than three intervals', () => {
    const held = { cpuCores: 0.5, memoryBytes: 10, lagMs: 7000, at: 1000 };
    expect(agedPodFigures(held, 1000, 10_000)).toEqual({
      source: 'metrics-api',
      ageMs: 7000,
      cpuCores: 0.5,
      memoryBytes: 10,
    });
    expect(agedPodFigures(held, 31_000, 10_000)?.ageMs).toBe(37_000);
    expect(agedPodFigures(held, 31_001, 10_000)).toBeUndefined();
    expect(agedPodFigures(undefined, 0, 10_000)).toBeUndefined();
  });
});

describe('PodMetricsSource', () => {
  const settings = (intervalMs = 1000, metricsApi = true): TelemetrySettings => ({
    intervalMs,
    metricsApi,
    orca: false,
    orcaIntervalMs: intervalMs,
  });
  const ep = (pod: string, namespace = 'shop', port = 50051) => ({
    address: `${pod}.localhost:${port}`,
    pod,
    namespace,
  });

  function fakeApi(timers: ManualTimers) {
    const state = {
      serves: true as boolean | Error,
      discoveries: 0,
      lists: [] as string[],
      pods: new Map<string, PodMetrics[]>(),
      listError: undefined as (Error & { code?: number }) | undefined,
    };
    const api: PodMetricsApi = {
      async serves() {
        state.discoveries++;
        if (state.serves instanceof Error) throw state.serves;
        return state.serves;
      },
      async list(ns) {
        state.lists.push(ns);
        if (state.listError) throw state.listError;
        const ts = new Date(WALL0 + timers.now() - 2000).toISOString();
        return (state.pods.get(ns) ?? []).map((p) => ({ ...p, timestamp: ts }));
      },
    };
    return { api, state };
  }

  function make(timers: ManualTimers, over: Partial<ConstructorParameters<typeof PodMetricsSource>[1]> = {}) {
    const f = fakeApi(timers);
    const { log, lines } = recordingLog();
    const src = new PodMetricsSource(f.api, {
      timers,
      clock: timers,
      wallClock: () => WALL0 + timers.now(),
      random: seededRandom(11),
      log,
      discoveryIntervalMs: 60_000,
      ...over,
    });
    return { src, ...f, lines };
  }

  it('lists each namespace every interval and maps pods to endpoint addresses', async () => {
    const timers = new ManualTimers();
    const { src, state } = make(timers);
    state.pods.set('shop', [
      pm('b1', [['250m', '64Mi']]),
      pm('b2', [['1', '1Gi']]),
      pm('other', [['2', '2Gi']]),
    ]);
    state.pods.set('tools', [pm('t1', [['100m', '10Mi']], undefined, 'tools')]);
    src.track(
      'shop/catalog',
      [ep('b1'), ep('b2'), { address: '10.0.0.9:50051', namespace: 'shop' }],
      settings(),
    );
    src.track('tools/x', [ep('t1', 'tools')], settings(5000));
    await runFor(timers, 1100);
    expect(src.apiState).toBe('available');
    const f = src.figures('shop/catalog');
    expect([...f.keys()].sort()).toEqual(['b1.localhost:50051', 'b2.localhost:50051']);
    expect(f.get('b1.localhost:50051')).toEqual({
      source: 'metrics-api',
      cpuCores: 0.25,
      memoryBytes: 64 * 2 ** 20,
      ageMs: expect.any(Number),
    });
    expect(f.get('b1.localhost:50051')?.ageMs).toBeGreaterThanOrEqual(2000);
    expect(f.get('b1.localhost:50051')?.ageMs).toBeLessThan(3200);

    state.lists.length = 0;
    await runFor(timers, 10_000);
    const shop = state.lists.filter((n) => n === 'shop').length;
    const tools = state.lists.filter((n) => n === 'tools').length;
    expect(shop).toBeGreaterThanOrEqual(9);
    expect(shop).toBeLessThanOrEqual(11);
    expect(tools).toBeGreaterThanOrEqual(1);
    expect(tools).toBeLessThanOrEqual(3);
    expect(src.figures('tools/x').get('t1.localhost:50051')?.cpuCores).toBeCloseTo(0.1, 12);

    // A pod gone from a successful list is gone at once.
    state.pods.set('shop', [pm('b2', [['1', '1Gi']])]);
    await runFor(timers, 1200);
    expect([...src.figures('shop/catalog').keys()]).toEqual(['b2.localhost:50051']);
    src.stop();
    expect(timers.size).toBe(0);
  });

  it('is quietly inactive without the API: one info log, no lists, asks discovery again', async () => {
    const timers = new ManualTimers();
    const { src, state, lines } = make(timers);
    state.serves = false;
    state.pods.set('shop', [pm('b1', [['250m', '64Mi']])]);
    src.track('p', [ep('b1')], settings());
    src.track('p', [ep('b1')], settings());
    await runFor(timers, 5000);
    expect(src.apiState).toBe('missing');
    expect(state.lists).toHaveLength(0);
    expect(src.figures('p').size).toBe(0);
    expect(lines.filter((l) => l.level === 'info')).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toHaveLength(0);
    expect(state.discoveries).toBe(1);

    state.serves = true; // metrics-server installed
    await runFor(timers, 60_000);
    expect(state.discoveries).toBe(2);
    expect(src.apiState).toBe('available');
    await runFor(timers, 1100);
    expect(src.figures('p').get('b1.localhost:50051')?.cpuCores).toBe(0.25);
    src.stop();
  });

  it('retries a discovery that failed, sooner than the discovery interval', async () => {
    const timers = new ManualTimers();
    const { src, state } = make(timers);
    state.serves = new Error('connect ECONNREFUSED');
    src.track('p', [ep('b1')], settings());
    await runFor(timers, 5000);
    expect(src.apiState).toBe('unknown');
    expect(state.discoveries).toBeGreaterThanOrEqual(2);
    state.serves = true;
    await runFor(timers, 30_000);
    expect(src.apiState).toBe('available');
    src.stop();
  });

  it('counts and logs failed lists, keeps the last figures until they age out, recovers', async () => {
    const timers = new ManualTimers();
    const { src, state, lines } = make(timers);
    state.pods.set('shop', [pm('b1', [['250m', '64Mi']])]);
    src.track('p', [ep('b1')], settings());
    await runFor(timers, 1100);
    expect(src.figures('p').size).toBe(1);
    state.listError = Object.assign(new Error('the server is currently unable to handle the request'), {
      code: 503,
    });
    const ages: number[] = [];
    for (let i = 0; i < 5; i++) {
      await runFor(timers, 1000);
      const f = src.figures('p').get('b1.localhost:50051');
      if (f) ages.push(f.ageMs);
    }
    expect(ages.length).toBeGreaterThanOrEqual(1);
    expect(ages).toEqual([...ages].sort((a, b) => a - b));
    expect(src.figures('p').size).toBe(0);
    expect(src.stats().failures).toBeGreaterThanOrEqual(4);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    state.listError = undefined;
    await runFor(timers, 1200);
    expect(src.figures('p').size).toBe(1);
    expect(lines.some((l) => l.level === 'info' && l.msg === 'PodMetrics lists recovered')).toBe(true);
    src.stop();
  });

  it('asks discovery again at once when a list says 404', async () => {
    const timers = new ManualTimers();
    const { src, state } = make(timers);
    src.track('p', [ep('b1')], settings());
    await runFor(timers, 1100);
    expect(state.discoveries).toBe(1);
    state.listError = Object.assign(new Error('not found'), { code: 404 });
    state.serves = false;
    await runFor(timers, 1100);
    expect(src.apiState).toBe('missing');
    expect(state.discoveries).toBe(2);
    const lists = state.lists.length;
    await runFor(timers, 5000);
    expect(state.lists.length).toBe(lists);
    src.stop();
  });

  it('follows pools: metricsApi off, untrack and stop end the lists', async () => {
    const timers = new ManualTimers();
    const { src, state } = make(timers);
    src.track('a', [ep('b1')], settings());
    src.track('b', [ep('x1', 'other')], settings());
    await runFor(timers, 1100);
    expect(new Set(state.lists)).toEqual(new Set(['shop', 'other']));
    src.track('b', [ep('x1', 'other')], settings(1000, false));
    state.lists.length = 0;
    await runFor(timers, 3000);
    expect(new Set(state.lists)).toEqual(new Set(['shop']));
    src.untrack('a');
    state.lists.length = 0;
    await runFor(timers, 3000);
    expect(state.lists).toHaveLength(0);
    expect(timers.size).toBe(0);
    src.track('a', [ep('b1')], settings());
    src.stop();
    expect(timers.size).toBe(0);
    src.track('a', [ep('b1')], settings());
    expect(timers.size).toBe(0);
  });

  it('abandons a list that does not answer', async () => {
    const timers = new ManualTimers();
    const never: PodMetricsApi = { serves: async () => true, list: () => new Promise(() => undefined) };
    const src = new PodMetricsSource(never, {
      timers,
      clock: timers,
      random: seededRandom(1),
      log: recordingLog().log,
      listTimeoutMs: 500,
    });
    src.track('p', [ep('b1')], settings());
    await runFor(timers, 3000);
    expect(src.stats().failures).toBeGreaterThanOrEqual(2);
    src.stop();
  });
});
