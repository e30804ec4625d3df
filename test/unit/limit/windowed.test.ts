import { resolveConcurrency } from '../../../src/api/resolve.js';
import { WindowedLimit, createLimitFromSpec, type Limit } from '../../../src/limit/index.js';
import { seededRandom } from '../../../src/util/clock.js';

/** Records what reaches the wrapped algorithm. */
class Recorder implements Limit {
  readonly name = 'Recorder';
  limit = 20;
  readonly seen: { rtt: number; inflight: number; dropped: boolean }[] = [];
  onSample(_startMs: number, rtt: number, inflight: number, dropped: boolean): void {
    this.seen.push({ rtt, inflight, dropped });
  }
}

describe('WindowedLimit', () => {
  it('hands on one sample per window: the mean RTT, the most in flight, any drop', () => {
    const r = new Recorder();
    const w = new WindowedLimit(r);
    for (let i = 0; i < 10; i++) w.onSample(i, 10, 1, false); // the first window: its 10th call closes it
    expect(r.seen).toEqual([{ rtt: 10, inflight: 1, dropped: false }]);
    // the next ends at 19 + 100 ms (twice 10 ms is under the floor): these all end by then
    for (let i = 1; i <= 18; i++) w.onSample(10 + i * 5, 10 + (i % 2) * 10, i === 7 ? 9 : 3, i === 13);
    expect(r.seen).toHaveLength(1);
    w.onSample(120, 10, 2, false); // ends at 130: closes it, itself included
    expect(r.seen[1]).toEqual({ rtt: (9 * 20 + 10 * 10) / 19, inflight: 9, dropped: true });
    expect(w.name).toBe('Recorder');
    expect(w.limit).toBe(20);
  });

  it('keeps a window open until it holds windowSize samples: a quiet endpoint still adapts', () => {
    const r = new Recorder();
    const w = new WindowedLimit(r, { windowSize: 10 });
    for (let t = 0; t < 3000; t += 150) w.onSample(t, 10 + t / 150, 5, false); // one call per 150 ms
    // 20 calls: two windows of 10, each closed by its 10th call, long past its 100 ms
    expect(r.seen.map((s) => s.rtt)).toEqual([14.5, 24.5]);
  });

  it('lasts twice the shortest RTT it saw, within [minWindowMs, maxWindowMs]', () => {
    const closes = (rtt: number, options = {}) => {
      const r = new Recorder();
      const w = new WindowedLimit(r, { windowSize: 1, ...options });
      const at: number[] = [];
      for (let t = 0; t < 5000; t += 1) {
        const before = r.seen.length;
        w.onSample(t, rtt, 1, false);
        if (r.seen.length > before) at.push(t + rtt);
      }
      return at[2]! - at[1]!;
    };
    expect(closes(10)).toBe(101); // floor 100 ms (the first call past it closes it)
    expect(closes(200)).toBe(401); // 2 × 200 ms
    expect(closes(800)).toBe(1001); // ceiling 1 s
    expect(closes(10, { minWindowMs: 50 })).toBe(51);
  });

  it('ignores samples too fast to say anything about queueing', () => {
    const r = new Recorder();
    const w = new WindowedLimit(r, { windowSize: 1 });
    w.onSample(0, 10, 1, false);
    for (let t = 0; t < 1000; t += 10) w.onSample(t, 0.01, 1, false);
    w.onSample(2000, 30, 1, false);
    expect(r.seen.map((s) => s.rtt)).toEqual([10, 30]);
  });

  it('is what a BackendPool gets for Gradient2, and its limit still moves with load', () => {
    const deps = { random: seededRandom(1) };
    const g = createLimitFromSpec(
      resolveConcurrency({ algorithm: 'Gradient2', initialLimit: 20, maxLimit: 200 }),
      deps,
    );
    expect(g).toBeInstanceOf(WindowedLimit);
    expect(g.name).toBe('Gradient2');
    expect(createLimitFromSpec(resolveConcurrency({ algorithm: 'AIMD' }), deps)).not.toBeInstanceOf(
      WindowedLimit,
    );
    // 10 s of steady 10 ms calls at the limit: it grows...
    let t = 0;
    for (; t < 10_000; t += 1) g.onSample(t, 10, g.limit, false);
    const grown = g.limit;
    expect(grown).toBeGreaterThan(40);
    // ...and 2 s of calls ten times slower take it down
    for (; t < 12_000; t += 1) g.onSample(t, 100, g.limit, false);
    expect(g.limit).toBeLessThan(grown * 0.6);
  });
});
