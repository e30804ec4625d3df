import { replayTrace } from '../../../src/tools/bench/cache-replay.js';
import { beladyHits } from '../../../src/tools/bench/belady.js';
import {
  DEFAULT_TRACE,
  generateTrace,
  type Trace,
  type TraceSpec,
} from '../../../src/tools/bench/cache-trace.js';

const still: TraceSpec = {
  ...DEFAULT_TRACE,
  keys: 1000,
  requests: 100_000,
  zipfS: 1,
  amplitude: 0,
  driftSwaps: 0,
};

function counts(t: Trace, from = 0, to = t.key.length): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = from; i < to; i++) m.set(t.key[i] as number, (m.get(t.key[i] as number) ?? 0) + 1);
  return m;
}

/** A hand-written trace: one call per ms by default. */
function tiny(keys: string, atMs?: number[]): Trace {
  const key = Int32Array.from([...keys].map((c) => c.charCodeAt(0)));
  return {
    spec: DEFAULT_TRACE,
    key,
    atMs: Float64Array.from(atMs ?? Array.from(key, (_, i) => i)),
  };
}

describe('trace generator', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = generateTrace({ ...DEFAULT_TRACE, requests: 5000 });
    const b = generateTrace({ ...DEFAULT_TRACE, requests: 5000 });
    const c = generateTrace({ ...DEFAULT_TRACE, requests: 5000, seed: 2 });
    expect(Array.from(a.key)).toEqual(Array.from(b.key));
    expect(Array.from(a.atMs)).toEqual(Array.from(b.atMs));
    expect(Array.from(a.key)).not.toEqual(Array.from(c.key));
    for (let i = 1; i < a.atMs.length; i++) expect(a.atMs[i]).toBeGreaterThanOrEqual(a.atMs[i - 1] as number);
  });

  it('has a Zipf shape: share of rank r ∝ r^−s (log-log slope −s), the top key at 1/H(N, s)', () => {
    const t = generateTrace(still);
    const freq = [...counts(t).values()].sort((x, y) => y - x);
    let h = 0;
    for (let r = 1; r <= still.keys; r++) h += 1 / r;
    expect((freq[0] as number) / still.requests).toBeCloseTo(1 / h, 1);
    // Least-squares slope of log(count) on log(rank) over ranks 1..100.
    const xs = Array.from({ length: 100 }, (_, i) => Math.log(i + 1));
    const ys = freq.slice(0, 100).map((f) => Math.log(f));
    const mx = xs.reduce((a, b) => a + b) / xs.length;
    const my = ys.reduce((a, b) => a + b) / ys.length;
    let num = 0;
    let den = 0;
    xs.forEach((x, i) => {
      num += (x - mx) * ((ys[i] as number) - my);
      den += (x - mx) ** 2;
    });
    expect(num / den).toBeGreaterThan(-1.1);
    expect(num / den).toBeLessThan(-0.9);
  });

  it('popular keys drift: the top keys of the first and last tenth differ; without drift they do not', () => {
    const top = (t: Trace, from: number, to: number) =>
      new Set(
        [...counts(t, from, to)]
          .sort((x, y) => y[1] - x[1])
          .slice(0, 20)
          .map(([k]) => k),
      );
    const overlap = (t: Trace) => {
      const n = t.key.length;
      const a = top(t, 0, n / 10);
      return [...top(t, n - n / 10, n)].filter((k) => a.has(k)).length;
    };
    expect(overlap(generateTrace(still))).toBeGreaterThanOrEqual(15);
    expect(
      overlap(generateTrace({ ...still, driftSwaps: 20, driftTopRanks: 50, driftEveryS: 20 })),
    ).toBeLessThan(10);
  });

  it('the rate follows the daily cycle: the day’s first half (rate above the mean) has more calls', () => {
    const t = generateTrace({ ...still, amplitude: 0.6, dayS: 100, requests: 20_000 });
    let up = 0;
    let down = 0;
    for (const ms of t.atMs) {
      if ((ms / 1000) % 100 < 50) up++;
      else down++;
    }
    // Expected ratio (1 + 2a/π) / (1 − 2a/π) ≈ 2.3 for a = 0.6.
    expect(up / down).toBeGreaterThan(1.9);
    expect(up / down).toBeLessThan(2.8);
  });

  it('rejects a bad spec', () => {
    expect(() => generateTrace({ ...still, amplitude: 1 })).toThrow(/amplitude/);
    expect(() => generateTrace({ ...still, keys: 0 })).toThrow(/keys/);
  });
});

describe('Belady MIN and LRU on hand-checked traces', () => {
  it('capacity 2, "abcabda": MIN keeps a and b and declines c and d (3 hits); LRU thrashes (0)', async () => {
    const t = tiny('abcabda');
    expect(beladyHits(t.atMs, t.key, 2, 3_600_000)).toEqual({ hits: 3, misses: 4 });
    expect((await replayTrace(t, { capacity: 2, ttlMs: 3_600_000 })).hits).toBe(0);
  });

  it('capacity 2, "abcacb": MIN evicts b (next use farthest) for c (2 hits); LRU 1 hit', async () => {
    const t = tiny('abcacb');
    expect(beladyHits(t.atMs, t.key, 2, 3_600_000)).toEqual({ hits: 2, misses: 4 });
    expect((await replayTrace(t, { capacity: 2, ttlMs: 3_600_000 })).hits).toBe(1);
  });

  it('TTLs: a use after the entry expired is a miss for both', async () => {
    const t = tiny('aaa', [0, 50, 150]);
    expect(beladyHits(t.atMs, t.key, 1, 100)).toEqual({ hits: 1, misses: 2 });
    expect((await replayTrace(t, { capacity: 1, ttlMs: 100 })).hits).toBe(1);
  });
});
