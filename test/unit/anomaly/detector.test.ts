import { MAD_CONSISTENCY, RobustDetector, type Verdict } from '../../../src/anomaly/detector.js';
import { seededRandom } from '../../../src/util/clock.js';
import { isSibylError } from '../../../src/util/errors.js';
import { clippedNormal, logNormal, take } from './series.js';

function run(d: RobustDetector, xs: readonly number[]): Verdict[] {
  return xs.map((x) => d.observe(x));
}

function transitions(vs: readonly Verdict[]): { i: number; t: 'raised' | 'cleared' }[] {
  return vs.flatMap((v, i) => (v.transition ? [{ i, t: v.transition }] : []));
}

describe('RobustDetector: the statistic', () => {
  it('scores with Iglewicz & Hoaglin: z = 0.6745·(x − median)/MAD', () => {
    const d = new RobustDetector({ direction: 'up', window: 9, minPoints: 9, relativeMadFloor: 0 });
    run(d, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // median 5; |x − 5| = 4,3,2,1,0,1,2,3,4 → MAD 2.
    expect(d.baseline()).toMatchObject({ median: 5, mad: 2, scale: 2, points: 9 });
    const v = d.observe(10);
    expect(v.z).toBeCloseTo((MAD_CONSISTENCY * 5) / 2, 10);
  });

  it('floors the MAD: a flat series does not turn every wiggle into an anomaly', () => {
    const d = new RobustDetector({ direction: 'up', minPoints: 10, relativeMadFloor: 0.05 });
    run(d, Array<number>(50).fill(100));
    expect(d.baseline()).toMatchObject({ median: 100, mad: 0, scale: 5 });
    const vs = run(d, Array<number>(20).fill(101));
    expect(transitions(vs)).toEqual([]);
    expect(vs[0]!.z).toBeCloseTo(MAD_CONSISTENCY / 5, 10);

    // A series stuck at zero needs the absolute floor: 0.1% errors is not an incident, 5% is.
    const e = new RobustDetector({ direction: 'up', minPoints: 10, absoluteMadFloor: 0.0025, raiseAfter: 2 });
    run(e, Array<number>(50).fill(0));
    expect(transitions(run(e, Array<number>(10).fill(0.001)))).toEqual([]);
    expect(transitions(run(e, [0.05, 0.05]))).toEqual([{ i: 1, t: 'raised' }]);
  });

  it('without a floor a flat series scores ±∞ on any change', () => {
    const d = new RobustDetector({ direction: 'up', minPoints: 5, relativeMadFloor: 0 });
    run(d, Array<number>(5).fill(3));
    expect(d.observe(3.001).z).toBe(Infinity);
    expect(d.observe(3).z).toBe(0);
  });

  it('refuses bad options with ERR_CONFIG_INVALID', () => {
    const bad = [
      { window: 2 },
      { minPoints: 200 },
      { minPoints: 1.5 },
      { raiseZ: 2, clearZ: 2 },
      { raiseAfter: 0 },
      { clearAfter: 1.5 },
      { relativeMadFloor: -1 },
      { absoluteMadFloor: Number.NaN },
    ];
    for (const o of bad) {
      let caught: unknown;
      try {
        new RobustDetector({ direction: 'up', ...o });
      } catch (e) {
        caught = e;
      }
      expect(isSibylError(caught, 'ERR_CONFIG_INVALID')).toBe(true);
    }
    expect(() => new RobustDetector({ direction: 'sideways' as 'up' })).toThrow(/direction/);
  });
});

describe('RobustDetector: verdicts', () => {
  const base = () => logNormal(7, 50, 0.2);

  it('respects the warm-up: no score and no raise before minPoints, however wild the points', () => {
    const d = new RobustDetector({ direction: 'up', minPoints: 20, raiseAfter: 1 });
    const vs = run(d, [...Array<number>(10).fill(50), ...Array<number>(9).fill(5000)]);
    for (const v of vs) {
      expect(v.state).toBe('warming');
      expect(v.z).toBeUndefined();
      expect(v.transition).toBeUndefined();
    }
    expect(d.baseline()).toBeUndefined();
    d.observe(50); // the 20th point completes the warm-up
    expect(d.state).toBe('normal');
    expect(d.observe(50).z).toBeDefined();
  });

  it('raises on a latency step within k points, and clears within m points of recovery', () => {
    const k = 3;
    const m = 5;
    const d = new RobustDetector({ direction: 'up', raiseAfter: k, clearAfter: m });
    const g = base();
    const quiet = logNormal(8, 50, 0.05);
    const xs = [...take(g, 200), ...take(g, 40).map((x) => x * 3), ...take(quiet, 20)];
    const ts = transitions(run(d, xs));
    expect(ts).toEqual([
      { i: 200 + k - 1, t: 'raised' },
      { i: 240 + m - 1, t: 'cleared' },
    ]);
  });

  it('keeps the baseline frozen while the anomaly lasts, so it does not become the new normal', () => {
    const d = new RobustDetector({ direction: 'up' });
    const g = base();
    run(d, take(g, 200));
    const before = d.baseline()!;
    const vs = run(
      d,
      take(g, 1000).map((x) => x * 3),
    );
    expect(transitions(vs)).toEqual([{ i: 2, t: 'raised' }]);
    expect(vs.at(-1)!.state).toBe('anomalous');
    expect(vs.at(-1)!.anomalyPoints).toBe(998);
    expect(d.baseline()).toEqual(before);
  });

  it('stays quiet on 10,000 points of log-normal noise', () => {
    for (const seed of [1, 2, 3]) {
      const d = new RobustDetector({ direction: 'up' });
      const vs = run(d, take(logNormal(seed, 50, 0.3), 10_000));
      expect(transitions(vs)).toEqual([]);
      // The noise does reach the raise threshold now and then: the quiet is the hysteresis at work.
      expect(vs.filter((v) => (v.z ?? 0) > 3.5).length).toBeGreaterThan(0);
    }
  });

  it('stays quiet on 10,000 points of hit-ratio noise, downward', () => {
    const d = new RobustDetector({ direction: 'down', relativeMadFloor: 0.02, absoluteMadFloor: 0.01 });
    expect(transitions(run(d, take(clippedNormal(11, 0.9, 0.02), 10_000)))).toEqual([]);
  });

  it('watches one direction only: a latency drop or a hit-ratio rise is not an anomaly', () => {
    const up = new RobustDetector({ direction: 'up' });
    expect(transitions(run(up, [...take(base(), 100), ...Array<number>(50).fill(5)]))).toEqual([]);
    const down = new RobustDetector({ direction: 'down' });
    const hr = clippedNormal(4, 0.6, 0.02);
    const vs = run(down, [...take(hr, 100), ...Array<number>(50).fill(0.99), ...Array<number>(5).fill(0.2)]);
    expect(transitions(vs)).toEqual([{ i: 152, t: 'raised' }]);
  });

  it('does not flap on a series hovering at the threshold', () => {
    // An exact baseline: median 100, MAD 5 (floors off), so the raise threshold z = 3.5 sits at 125.9.
    const opts = { direction: 'up', window: 100, minPoints: 100, relativeMadFloor: 0 } as const;
    const seedBaseline = (d: RobustDetector) =>
      run(
        d,
        Array.from({ length: 100 }, (_, i) => (i % 2 ? 95 : 105)),
      );
    const at = (z: number) => 100 + (z * 5) / MAD_CONSISTENCY;

    // Alternating just above and just below: never k in a row, never raised.
    const a = new RobustDetector(opts);
    seedBaseline(a);
    expect(
      transitions(
        run(
          a,
          Array.from({ length: 500 }, (_, i) => at(i % 2 ? 3.3 : 3.7)),
        ),
      ),
    ).toEqual([]);

    // z uniform in [2.5, 4.5]: crosses 3.5 constantly, yet raises once and never clears (never below 2).
    const b = new RobustDetector(opts);
    seedBaseline(b);
    const r = seededRandom(99);
    const zs = Array.from({ length: 2000 }, () => 2.5 + 2 * r());
    const crossings = zs.filter((z, i) => i > 0 && z > 3.5 !== zs[i - 1]! > 3.5).length;
    expect(crossings).toBeGreaterThan(500);
    const ts = transitions(run(b, zs.map(at)));
    expect(ts).toHaveLength(1);
    expect(ts[0]!.t).toBe('raised');
    expect(b.state).toBe('anomalous');
  });

  it('needs m consecutive recovered points to clear: a relapse restarts the count', () => {
    const d = new RobustDetector({
      direction: 'up',
      window: 10,
      minPoints: 10,
      relativeMadFloor: 0,
      clearAfter: 5,
    });
    run(d, [95, 105, 95, 105, 95, 105, 95, 105, 95, 105]);
    expect(transitions(run(d, [200, 200, 200]))).toEqual([{ i: 2, t: 'raised' }]);
    const vs = run(d, [100, 100, 100, 100, 200, 100, 100, 100, 100, 100]);
    expect(transitions(vs)).toEqual([{ i: 9, t: 'cleared' }]);
    expect(vs[9]!.anomalyPoints).toBe(11); // the raise point and ten more
    expect(d.anomalyPoints).toBe(0);
  });

  it('commits a broken suspect streak to the baseline, and ignores non-finite points', () => {
    const d = new RobustDetector({ direction: 'up', window: 50, minPoints: 10 });
    run(d, Array<number>(10).fill(100));
    run(d, [300, 300, 100]); // two suspects, then normal: all three join the window
    expect(d.baseline()!.points).toBe(13);
    const v = d.observe(Number.NaN);
    expect(v).toMatchObject({ state: 'normal' });
    expect(v.transition).toBeUndefined();
    expect(d.baseline()!.points).toBe(13);
    d.reset();
    expect(d.state).toBe('warming');
    expect(d.baseline()).toBeUndefined();
  });

  it('slides: the window holds the last N accepted points', () => {
    const d = new RobustDetector({
      direction: 'up',
      window: 5,
      minPoints: 5,
      relativeMadFloor: 0,
      raiseZ: 1e9,
      clearZ: 0,
    });
    run(d, [1, 2, 3, 4, 5, 6, 7, 8]);
    expect(d.baseline()).toMatchObject({ median: 6, mad: 1, points: 5 });
  });
});
