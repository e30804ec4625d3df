import { LIMIT_ALGORITHMS } from '../../../src/api/backendpool.js';
import { resolveConcurrency } from '../../../src/api/resolve.js';
import { createLimit, createLimitFromSpec, limitNames, type Limit } from '../../../src/limit/index.js';
import { seededRandom } from '../../../src/util/clock.js';

/** Every Limit algorithm through the same cases. Fixed does not adapt: it must simply stay put. */
const ADAPTIVE = limitNames().filter((n) => n !== 'Fixed');
const options = { initialLimit: 20, minLimit: 5, maxLimit: 200, targetLatencyMs: 50 };
const make = (name: string, seed = 1) => createLimit(name, options, { random: seededRandom(seed) });

/**
 * Feeds n samples at the limit (inflight = limit, so no algorithm thinks it is app-limited), one every
 * 10 ms of a clock that only moves on (windowed algorithms read time from the samples).
 */
let clockMs = 0;
function feed(limit: Limit, n: number, rtt: (i: number) => number, dropped = false): void {
  for (let i = 0; i < n; i++, clockMs += 10) limit.onSample(clockMs, rtt(i), limit.limit, dropped);
}

it('registers exactly the algorithms the API names', () => {
  expect(limitNames()).toEqual([...LIMIT_ALGORITHMS].sort());
});

it('refuses an unknown algorithm and inconsistent bounds with typed errors', () => {
  const deps = { random: seededRandom(1) };
  expect(() => createLimit('Nope', {}, deps)).toThrow(
    expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
  );
  for (const name of limitNames()) {
    expect(() => createLimit(name, { minLimit: 30, initialLimit: 20 }, deps)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
  }
});

it('builds from a BackendPool spec: QueueDelay and the CRD defaults when unset', () => {
  const deps = { random: seededRandom(1) };
  const l = createLimitFromSpec(resolveConcurrency({}), deps);
  expect(l.name).toBe('QueueDelay');
  expect(l.limit).toBe(20);
  const a = createLimitFromSpec(
    resolveConcurrency({ algorithm: 'AIMD', initialLimit: 8, targetLatency: '20ms' }),
    deps,
  );
  a.onSample(0, 25, 8, false); // over the 20 ms target
  expect(a.limit).toBe(7);
});

describe.each(limitNames())('%s', (name) => {
  it('starts at the initial limit', () => {
    expect(make(name).limit).toBe(20);
  });

  it('stays an integer within [min, max] whatever it is shown', () => {
    const random = seededRandom(11);
    const limit = make(name, 3);
    const seen = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const phase = Math.floor(i / 2000) % 3; // calm, congested, dropping
      const rtt = phase === 0 ? 5 + random() : phase === 1 ? 5 + random() * 500 : random() * 3;
      limit.onSample(i, rtt, Math.floor(random() * 2.5 * limit.limit), phase === 2 && random() < 0.3);
      seen.add(limit.limit);
    }
    const values = [...seen];
    expect(values.filter((v) => !Number.isInteger(v) || v < 5 || v > 200)).toEqual([]);
    if (ADAPTIVE.includes(name)) expect(values.length).toBeGreaterThan(5); // it did move about
  });

  if (!ADAPTIVE.includes(name)) {
    it('never moves', () => {
      const limit = make(name);
      feed(limit, 500, () => 1);
      feed(limit, 500, () => 1000, true);
      expect(limit.limit).toBe(20);
    });
    return;
  }

  it('grows under low, steady latency with no drops, up to max', () => {
    const limit = make(name);
    feed(limit, 200, () => 10);
    expect(limit.limit).toBeGreaterThan(20);
    feed(limit, 20_000, () => 10);
    expect(limit.limit).toBe(200);
  });

  it('does not grow while the client uses less than half of it (app limited)', () => {
    const limit = make(name);
    for (let i = 0; i < 500; i++) limit.onSample(i, 10, 5, false);
    expect(limit.limit).toBeLessThanOrEqual(20);
  });

  it('shrinks when latency rises', () => {
    const limit = make(name);
    feed(limit, 300, () => 10);
    const before = limit.limit;
    feed(limit, 100, (i) => 10 + i * 2); // 10 → 210 ms
    expect(limit.limit).toBeLessThan(before * 0.8);
  });

  it('shrinks on drops, down to min', () => {
    const limit = make(name);
    feed(limit, 300, () => 10);
    const before = limit.limit;
    feed(limit, 20, () => 10, true);
    expect(limit.limit).toBeLessThan(before);
    feed(limit, 5000, () => 2, true);
    expect(limit.limit).toBe(5);
  });
});
