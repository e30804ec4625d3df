import { DecayedCountMin, HotSet } from '../../../src/cache/sketch.js';
import { TopK } from '../../../src/cache/topk.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { Zipf } from '../../../src/util/zipf.js';

const DAY = 86_400_000;

/** A seeded Zipf(s) sampler over ranks 1..n. */
function zipf(n: number, s: number, seed: number): () => number {
  const z = new Zipf(n, s);
  const rnd = seededRandom(seed);
  return () => z.draw(rnd) + 1;
}

describe('DecayedCountMin', () => {
  it('never underestimates, and overestimates by more than ε·N for at most about δ of the keys', () => {
    const clock = new ManualClock();
    const cms = new DecayedCountMin({ width: 512, depth: 4, halfLifeMs: DAY, now: () => clock.now() });
    const draw = zipf(20_000, 0.8, 7);
    const truth = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) {
      const k = `k${draw()}`;
      truth.set(k, (truth.get(k) ?? 0) + 1);
      cms.add(k);
    }
    const n = cms.totalCount();
    expect(n).toBeCloseTo(100_000, 0);
    let over = 0;
    for (const [k, c] of truth) {
      const e = cms.estimate(k);
      expect(e).toBeGreaterThanOrEqual(c - 1e-3 * c);
      if (e - c > cms.epsilon * n) over++;
    }
    expect(over).toBeLessThanOrEqual(Math.ceil(2 * cms.delta * truth.size));
  });

  it('conservative update: the mean overestimate stays under half what plain count-min expects (N / width)', () => {
    const clock = new ManualClock();
    const cms = new DecayedCountMin({ width: 64, depth: 2, halfLifeMs: DAY, now: () => clock.now() });
    const draw = zipf(2000, 1, 3);
    const truth = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const k = `k${draw()}`;
      truth.set(k, (truth.get(k) ?? 0) + 1);
      cms.add(k);
    }
    let sumErr = 0;
    for (const [k, c] of truth) sumErr += cms.estimate(k) - c;
    // Plain count-min's expected overestimate per key is about N / width per row (min of 2 rows ≥ half of it).
    expect(sumErr / truth.size).toBeLessThan(20_000 / 64 / 2);
  });

  it('decays: a count halves every half-life, and renormalising keeps estimates right over many half-lives', () => {
    const clock = new ManualClock(1000);
    const cms = new DecayedCountMin({ width: 1024, halfLifeMs: 1000, now: () => clock.now() });
    cms.add('a', 100);
    clock.advance(1000);
    expect(cms.estimate('a')).toBeCloseTo(50, 3);
    clock.advance(3000);
    expect(cms.estimate('a')).toBeCloseTo(6.25, 3);
    // A steady 10 calls a second for 100 half-lives (several renormalisations): the decayed count
    // settles at rate × halfLife / ln 2.
    for (let t = 0; t < 100_000; t += 100) {
      clock.advance(100);
      cms.add('b');
    }
    expect(cms.estimate('b')).toBeGreaterThan(0.9 * (10 / Math.LN2));
    expect(cms.estimate('b')).toBeLessThan(1.1 * (10 / Math.LN2));
    expect(cms.estimate('a')).toBeLessThan(1e-20);
  });
});

describe('TopK', () => {
  it('keeps the K largest, raising a held key in place, and reports who it pushed out', () => {
    const t = new TopK(3);
    expect(t.offer('a', 1)).toEqual({ hot: true });
    t.offer('b', 5);
    t.offer('c', 3);
    expect(t.threshold).toBe(1);
    expect(t.offer('d', 0.5)).toEqual({ hot: false });
    expect(t.offer('d', 2)).toEqual({ hot: true, evicted: 'a' });
    expect(t.offer('d', 10)).toEqual({ hot: true });
    expect(t.sorted().map((e) => e.key)).toEqual(['d', 'b', 'c']);
    t.rescale(0.5);
    expect(t.value('d')).toBe(5);
    expect(() => new TopK(0)).toThrow(/positive integer/);
  });
});

describe('HotSet', () => {
  it('finds the heavy hitters among a long tail', () => {
    const clock = new ManualClock();
    const hs = new HotSet({ width: 2048, topK: 10, halfLifeMs: DAY, now: () => clock.now() });
    const rnd = seededRandom(11);
    for (let i = 0; i < 200_000; i++) {
      // Half the calls go to 10 heavy keys (5% each), half to 100 000 others (0.0005% each).
      const k = rnd() < 0.5 ? `heavy${Math.floor(rnd() * 10)}` : `tail${Math.floor(rnd() * 100_000)}`;
      hs.record(k);
    }
    expect(
      hs
        .hot()
        .map((e) => e.key)
        .sort(),
    ).toEqual(Array.from({ length: 10 }, (_, i) => `heavy${i}`).sort());
    for (const e of hs.hot()) expect(e.estimate).toBeGreaterThan(0.9 * 10_000);
  });

  it('a key that stops being called decays out of the hot set; a newly popular one comes in', () => {
    const clock = new ManualClock();
    const hs = new HotSet({ width: 1024, topK: 3, halfLifeMs: 1000, now: () => clock.now() });
    const rnd = seededRandom(5);
    const run = (keys: string[], ms: number) => {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10);
        hs.record(keys[Math.floor(rnd() * keys.length)] as string);
      }
    };
    run(['old', 'x', 'y'], 5000);
    expect(hs.isHot('old')).toBe(true);
    run(['new', 'x', 'y'], 10_000);
    expect(hs.isHot('old')).toBe(false);
    expect(hs.hot().map((e) => e.key)).toContain('new');
    expect(hs.estimate('old')).toBeLessThan(hs.estimate('new') / 100);
  });
});
