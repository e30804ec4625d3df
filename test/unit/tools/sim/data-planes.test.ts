import type { Endpoint } from '../../../../src/balancer/index.js';
import { seededRandom } from '../../../../src/util/clock.js';
import { simulate, type RunObserver } from '../../../../src/tools/sim/engine.js';
import { EnvoyLeastRequest } from '../../../../src/tools/sim/envoy-least-request.js';
import { OperatorWeights } from '../../../../src/tools/sim/operator-weights.js';
import { WeightedRandom } from '../../../../src/tools/sim/weighted-random.js';
import { scenario } from './helpers.js';

const clock = { now: () => 0 };
const deps = (seed = 1) => ({ clock, random: seededRandom(seed) });

/** Endpoints with the given pushed weights (undefined: none pushed) and in-flight counts. */
function endpoints(weights: (number | undefined)[], inflight: number[] = []): Endpoint[] {
  return weights.map((w, i) => ({
    id: `e${i}`,
    address: `e${i}`,
    inflight: inflight[i] ?? 0,
    ...(w !== undefined ? { hints: { weight: w } } : {}),
  }));
}

/** Each endpoint's share of n picks; in-flight counts stay as given (no call is started). */
function shares(pick: (eps: readonly Endpoint[]) => Endpoint, eps: readonly Endpoint[], n: number): number[] {
  const counts = eps.map(() => 0);
  for (let k = 0; k < n; k++) counts[eps.indexOf(pick(eps))]!++;
  return counts.map((c) => c / n);
}

describe('EnvoyLeastRequest', () => {
  it('with differing weights and no load, picks in proportion to the weights (weighted round robin)', () => {
    const b = new EnvoyLeastRequest(deps());
    const eps = endpoints([1, 3, 6]);
    const s = shares((c) => b.pick(c), eps, 1000);
    // an EDF schedule is exact up to one pick per endpoint
    expect(s[0]).toBeCloseTo(0.1, 2);
    expect(s[1]).toBeCloseTo(0.3, 2);
    expect(s[2]).toBeCloseTo(0.6, 2);
  });

  it('divides a weight by (active requests + 1)^bias, bias 1 by default', () => {
    // weight 2 with 3 active: effective 2 / 4 = 0.5 against weight 1 idle: 1 / 1
    const eps = endpoints([1, 2], [0, 3]);
    const b = new EnvoyLeastRequest(deps());
    const s = shares((c) => b.pick(c), eps, 3000);
    expect(s[0]).toBeCloseTo(2 / 3, 2);
    expect(b.effectiveWeight(eps[1]!)).toBe(0.5);
    // bias 0: the active requests are ignored, the weights alone count
    const flat = new EnvoyLeastRequest(deps(), 0);
    expect(shares((c) => flat.pick(c), eps, 3000)[0]).toBeCloseTo(1 / 3, 2);
    // bias 2: (3 + 1)^2 = 16
    expect(new EnvoyLeastRequest(deps(), 2).effectiveWeight(eps[1]!)).toBe(2 / 16);
  });

  it('with equal weights is P2C on active requests: two draws, the less loaded wins', () => {
    // endpoint 0 idle, the others busy: it wins whenever either draw finds it, 1 − (3/4)² = 7/16
    // (a full scan would always pick it, a random pick a quarter of the time)
    for (const w of [undefined, 5]) {
      const b = new EnvoyLeastRequest(deps(3));
      const s = shares((c) => b.pick(c), endpoints([w, w, w, w], [0, 5, 5, 5]), 20_000);
      expect(s[0]).toBeGreaterThan(7 / 16 - 0.02);
      expect(s[0]).toBeLessThan(7 / 16 + 0.02);
    }
  });

  it('rebuilds its schedule when a new weight arrives', () => {
    const b = new EnvoyLeastRequest(deps());
    const eps = endpoints([1, 1]);
    shares((c) => b.pick(c), eps, 100);
    eps[1]!.hints = { weight: 4 };
    expect(shares((c) => b.pick(c), eps, 1000)[1]).toBeCloseTo(0.8, 2);
  });
});

describe('WeightedRandom', () => {
  it('draws each call in proportion to the weights, whatever the load (open loop)', () => {
    const b = new WeightedRandom(deps(2));
    const s = shares((c) => b.pick(c), endpoints([1, 2, 7], [50, 0, 100]), 20_000);
    expect(s[0]).toBeGreaterThan(0.09);
    expect(s[0]).toBeLessThan(0.11);
    expect(s[1]).toBeGreaterThan(0.18);
    expect(s[1]).toBeLessThan(0.22);
    expect(s[2]).toBeGreaterThan(0.68);
    expect(s[2]).toBeLessThan(0.72);
  });

  it('is uniform before any weight is pushed', () => {
    const b = new WeightedRandom(deps(4));
    for (const x of shares(
      (c) => b.pick(c),
      endpoints([undefined, undefined, undefined, undefined]),
      20_000,
    )) {
      expect(x).toBeGreaterThan(0.23);
      expect(x).toBeLessThan(0.27);
    }
  });
});

describe('OperatorWeights', () => {
  it('gives a server that fails fast the least weight, not the most', () => {
    const w = new OperatorWeights(2);
    for (let k = 0; k < 100; k++) {
      w.record(0, true, 1); // fails every call at once
      w.record(1, false, 16);
    }
    w.scrape(1000);
    expect(w.weight[0]).toBe(1);
    expect(w.weight[1]).toBeGreaterThan(1);
  });

  it('weights each server by 1 / its median latency, quantised, with hysteresis', () => {
    const w = new OperatorWeights(2);
    for (let k = 0; k < 100; k++) {
      w.record(0, false, 4);
      w.record(1, false, 16);
    }
    w.scrape(1000);
    expect(w.weight[0]! / w.weight[1]!).toBeGreaterThan(3);
    expect(w.weight[0]! / w.weight[1]!).toBeLessThan(5);
    const before = Array.from(w.weight);
    // a little slower: within the hysteresis band, nothing changes
    for (let k = 0; k < 100; k++) {
      w.record(0, false, 4.2);
      w.record(1, false, 16.5);
    }
    w.scrape(2000);
    expect(Array.from(w.weight)).toEqual(before);
  });
});

describe('the weights in a run', () => {
  /** What each router's endpoints held at each dispatch: the time, the hints' scrape time and weights. */
  function watch(): RunObserver & {
    seen: { now: number; atMs?: number; weights: (number | undefined)[] }[];
  } {
    const seen: { now: number; atMs?: number; weights: (number | undefined)[] }[] = [];
    return {
      seen,
      done: false,
      onDispatch(router, _ep, _c, now) {
        seen.push({
          now,
          ...(router.endpoints[0]!.hints?.atMs !== undefined
            ? { atMs: router.endpoints[0]!.hints.atMs }
            : {}),
          weights: router.endpoints.map((e) => e.hints?.weight),
        });
      },
      onEnd() {},
    };
  }

  const pool = {
    servers: [
      { count: 3, speed: 1, concurrency: 2 },
      { count: 3, speed: 0.25, concurrency: 2 },
    ],
    load: { utilization: 0.5 },
    durationS: 12,
  };

  it('reach the routers with the hints, at the push interval and with the report lag', () => {
    const s = scenario({ ...pool, telemetry: { metricsIntervalS: 1, reportIntervalS: 2 } });
    const o = watch();
    simulate(s, { policy: 'EnvoyLeastRequest', observer: o });
    // nothing before the first scrape (1 s) has reached a router
    for (const d of o.seen.filter((x) => x.now < 1000))
      expect(d.weights.every((w) => w === undefined)).toBe(true);
    const weighted = o.seen.filter((d) => d.weights[0] !== undefined);
    expect(weighted.length).toBeGreaterThan(1000);
    for (const d of weighted) {
      // a scrape's weights, pushed up to a report interval after it, used up to a push interval later
      expect(d.atMs! % 1000).toBe(0);
      expect(d.now - d.atMs!).toBeGreaterThanOrEqual(0);
      expect(d.now - d.atMs!).toBeLessThan(3000);
    }
    // the servers four times slower get a quarter of the weight or so
    const last = weighted.at(-1)!.weights as number[];
    const fast = last.slice(0, 3).reduce((a, b) => a + b, 0);
    const slow = last.slice(3).reduce((a, b) => a + b, 0);
    expect(fast / slow).toBeGreaterThan(2.5);
    expect(fast / slow).toBeLessThan(6);
  });

  it('are pushed only to the data planes’ policies', () => {
    const o = watch();
    simulate(scenario(pool), { policy: 'LeastRequest', observer: o });
    expect(o.seen.some((d) => d.atMs !== undefined)).toBe(true);
    expect(o.seen.every((d) => d.weights.every((w) => w === undefined))).toBe(true);
  });

  it('WeightedRandom sends the slow servers about their weight share', () => {
    const r = simulate(scenario(pool), { policy: 'WeightedRandom' });
    const slow = r.share.slice(3).reduce((a, b) => a + b, 0);
    // uniform until the first push (a twelfth of the run), then about 1 / (4 + 1) of the calls
    expect(slow).toBeGreaterThan(0.15);
    expect(slow).toBeLessThan(0.35);
  });
});
