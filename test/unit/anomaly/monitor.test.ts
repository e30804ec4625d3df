import {
  AnomalyMonitor,
  type AnomalyTransition,
  type PoolContext,
  type PoolSample,
} from '../../../src/anomaly/monitor.js';
import { clippedNormal, logNormal } from './series.js';

/** A pool's four series, noisy around steady levels. */
function pool(seed: number) {
  const p99 = logNormal(seed, 50, 0.2);
  const err = clippedNormal(seed + 1, 0.002, 0.001);
  const model = logNormal(seed + 2, 0.1, 0.2);
  const hit = clippedNormal(seed + 3, 0.9, 0.02);
  return (): Required<PoolSample> => ({
    p99Ms: p99(),
    errorRate: err(),
    modelError: model(),
    hitRatio: hit(),
  });
}

const endpoints = (p99s: readonly number[], extra: Partial<PoolContext> = {}): PoolContext => ({
  endpoints: p99s.map((p99Ms, i) => ({ name: `ep-${i}`, p99Ms, errorRate: 0.002, breaker: 'Closed' })),
  openBreakers: 0,
  ...extra,
});

const healthy = endpoints([48, 50, 52, 49, 51, 50]);

function warm(m: AnomalyMonitor, name: string, gen: () => Required<PoolSample>, n = 200): void {
  for (let i = 0; i < n; i++) expect(m.observe(name, gen(), healthy)).toEqual([]);
}

function feed(
  m: AnomalyMonitor,
  name: string,
  n: number,
  sample: () => PoolSample,
  ctx: PoolContext = healthy,
): { i: number; t: AnomalyTransition }[] {
  const out: { i: number; t: AnomalyTransition }[] = [];
  for (let i = 0; i < n; i++) for (const t of m.observe(name, sample(), ctx)) out.push({ i, t });
  return out;
}

describe('AnomalyMonitor', () => {
  it.each([
    ['p99Ms', 'LatencyAnomaly', (s: Required<PoolSample>) => ({ ...s, p99Ms: s.p99Ms * 4 })],
    ['errorRate', 'ErrorRateAnomaly', (s: Required<PoolSample>) => ({ ...s, errorRate: 0.08 })],
    ['modelError', 'ModelDrift', (s: Required<PoolSample>) => ({ ...s, modelError: s.modelError * 6 })],
    ['hitRatio', 'CacheHitDrop', (s: Required<PoolSample>) => ({ ...s, hitRatio: 0.4 })],
  ] as const)(
    'raises %s as %s within k points, then clears within m of recovery',
    (metric, reason, inject) => {
      const m = new AnomalyMonitor();
      const g = pool(21);
      warm(m, 'checkout', g);
      const raised = feed(m, 'checkout', 30, () => inject(g()));
      expect(raised.map((r) => [r.i, r.t.metric, r.t.state, r.t.reason])).toEqual([
        [2, metric, 'raised', reason],
      ]);
      expect(m.activeAnomalies('checkout')).toEqual([
        expect.objectContaining({ metric, reason, points: 28, message: raised[0]!.t.message }),
      ]);
      // Recovery at the steady levels, without noise, so the count is exact.
      const steady = { p99Ms: 50, errorRate: 0.002, modelError: 0.1, hitRatio: 0.9 };
      const cleared = feed(m, 'checkout', 10, () => steady);
      expect(cleared.map((c) => [c.i, c.t.metric, c.t.state, c.t.reason])).toEqual([
        [4, metric, 'cleared', reason],
      ]);
      expect(cleared[0]!.t.message).toMatch(
        new RegExp(`^${reason} cleared on pool checkout: .*after 33 points\\.$`),
      );
      expect(m.activeAnomalies('checkout')).toEqual([]);
    },
  );

  it('stays quiet on 10,000 noisy samples of all four metrics', () => {
    const m = new AnomalyMonitor();
    const g = pool(5);
    expect(feed(m, 'quiet', 10_000, g)).toEqual([]);
  });

  it('gives the figures: current value, baseline median and robust z', () => {
    const m = new AnomalyMonitor();
    for (let i = 0; i < 60; i++) m.observe('p', { p99Ms: i % 2 ? 45 : 55 }); // median 50, MAD 5
    const [t] = feed(m, 'p', 3, () => ({ p99Ms: 200 })).map((r) => r.t);
    expect(t).toMatchObject({ pool: 'p', metric: 'p99Ms', state: 'raised', value: 200, median: 50 });
    expect(t!.z).toBeCloseTo((0.6745 * 150) / 5, 10);
    expect(t!.message).toContain('LatencyAnomaly on pool p: p99 latency 200.0ms vs baseline median 50.0ms');
    expect(t!.message).toContain('robust z 20.2');
    expect(t!.message).toContain('beyond z 3.5 for 3 consecutive points');
  });

  it('names the endpoint that stands out, and says whether breakers opened', () => {
    const m = new AnomalyMonitor();
    const g = pool(31);
    warm(m, 'p', g);
    const ctx: PoolContext = {
      endpoints: [
        { name: 'a', p99Ms: 52, errorRate: 0.001, breaker: 'Closed' },
        { name: 'b', p99Ms: 640, errorRate: 0.3, breaker: 'Open' },
        { name: 'c', p99Ms: 49, errorRate: 0.002, breaker: 'Closed' },
        { name: 'd', p99Ms: 55, errorRate: 0.001, breaker: 'Closed' },
      ],
      openBreakers: 1,
      inflightPerEndpoint: 3.25,
    };
    const ts = feed(m, 'p', 3, () => ({ ...g(), p99Ms: 180, errorRate: 0.08 }), ctx).map((r) => r.t);
    const lat = ts.find((t) => t.reason === 'LatencyAnomaly')!;
    const err = ts.find((t) => t.reason === 'ErrorRateAnomaly')!;
    expect(lat.message).toContain('Endpoints standing out by p99 latency: b (640.0ms vs peers 53.5ms)');
    expect(lat.message).toContain('1 circuit breaker(s) open: b.');
    expect(lat.message).toContain(
      '1 of 4 endpoints are slow (3.3 calls in flight per endpoint): scaling out is unlikely',
    );
    expect(err.message).toContain('Endpoints standing out by error rate: b (30.00% vs peers 0.15%)');
    expect(err.message).toContain('error rate 8.00% vs baseline median');
    expect(err.message).not.toContain('a (');
  });

  it('recommends scaling out when most endpoints are slow together', () => {
    const m = new AnomalyMonitor();
    const g = pool(41);
    warm(m, 'p', g);
    const ctx = endpoints([160, 170, 150, 180, 55, 165]);
    const [t] = feed(m, 'p', 3, () => ({ p99Ms: 170 }), ctx).map((r) => r.t);
    expect(t!.reason).toBe('LatencyAnomaly');
    expect(t!.message).toContain('5 of 6 endpoints are slow together: scale out the pool.');
    expect(t!.message).toContain('No circuit breaker is open.');
    expect(t!.message).not.toContain('standing out');
  });

  it('keeps pools apart, skips metrics left out, and forgets a pool', () => {
    const m = new AnomalyMonitor();
    const g = pool(51);
    warm(m, 'a', g);
    warm(m, 'b', g);
    // Samples without p99 do not advance the latency detector.
    expect(feed(m, 'a', 50, () => ({ errorRate: 0.002 }))).toEqual([]);
    expect(feed(m, 'a', 3, () => ({ p99Ms: 500, errorRate: Number.NaN })).map((r) => r.t.reason)).toEqual([
      'LatencyAnomaly',
    ]);
    expect(m.activeAnomalies('a').map((a) => a.reason)).toEqual(['LatencyAnomaly']);
    expect(m.activeAnomalies('b')).toEqual([]);
    expect(m.activeAnomalies('nope')).toEqual([]);
    m.forget('a');
    expect(m.activeAnomalies('a')).toEqual([]);
    // A forgotten pool warms up again before it judges anything.
    expect(feed(m, 'a', 29, () => ({ p99Ms: 5000 }))).toEqual([]);
  });

  it('takes per-metric overrides and refuses bad ones at construction', () => {
    const m = new AnomalyMonitor({ metrics: { p99Ms: { raiseAfter: 1, minPoints: 10 } } });
    for (let i = 0; i < 10; i++) m.observe('p', { p99Ms: 50 });
    expect(m.observe('p', { p99Ms: 500 }).map((t) => t.state)).toEqual(['raised']);
    expect(() => new AnomalyMonitor({ metrics: { hitRatio: { clearZ: 9 } } })).toThrow(/clearZ/);
  });
});
