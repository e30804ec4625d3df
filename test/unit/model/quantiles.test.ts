import { describe, expect, it } from '@jest/globals';
import {
  CALIBRATION_LEVELS,
  Z90,
  coverage,
  fitCalibration,
  logQuantile,
  normalQuantile,
  scoreAt,
  sigmaOf,
  type ScoredSample,
} from '../../../src/model/quantiles.js';
import { seededRandom } from '../../../src/util/clock.js';

/** A standard normal draw (Box–Muller) from a seeded generator. */
function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

describe('per-call quantiles', () => {
  it('inverts the normal distribution', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.9)).toBeCloseTo(Z90, 8);
    expect(normalQuantile(0.99)).toBeCloseTo(2.3263478740408408, 8);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 7);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(Number.isNaN(normalQuantile(1.5))).toBe(true);
  });

  it('reads σ from the heads, floored when they touch', () => {
    expect(sigmaOf(1, 1 + Z90 * 0.5)).toBeCloseTo(0.5, 12);
    expect(sigmaOf(1, 1)).toBe(0.01);
    expect(sigmaOf(1, NaN)).toBe(0.01);
  });

  it('without a calibration, gives the log-normal quantile', () => {
    const mu = Math.log(10);
    const p90 = mu + Z90 * 0.4;
    expect(logQuantile(mu, p90, 0.9, undefined)).toBeCloseTo(p90, 8);
    expect(logQuantile(mu, p90, 0.99, undefined)).toBeCloseTo(mu + 2.3263478740408408 * 0.4, 8);
  });

  // heavy tails: residuals from a Student-t with 3 degrees of freedom, per-call σ varying tenfold, and
  // heads that claim a log-normal with that σ — the log-normal p99 under-covers, the conformal one not
  const heavy = (n: number, seed: number): ScoredSample[] => {
    const rnd = seededRandom(seed);
    return Array.from({ length: n }, () => {
      const sigma = 0.05 + 0.45 * rnd();
      const chi = gaussian(rnd) ** 2 + gaussian(rnd) ** 2 + gaussian(rnd) ** 2;
      const t = gaussian(rnd) / Math.sqrt(chi / 3);
      const mu = 3 * rnd();
      return { t: mu + sigma * t, logLatency: mu, logP90: mu + Z90 * sigma };
    });
  };

  it('calibrates to the goal on heavy tails the log-normal reading misses', () => {
    const cal = fitCalibration(heavy(4000, 1), 'holdout');
    const test = heavy(20_000, 2);
    const plain = coverage(test, 0.99, undefined);
    const conformal = coverage(test, 0.99, cal);
    expect(plain).toBeLessThan(0.975);
    expect(conformal).toBeGreaterThan(0.985);
    expect(conformal).toBeLessThan(0.995);
    expect(cal.levels).toEqual(CALIBRATION_LEVELS);
    expect(cal.samples).toBe(4000);
    for (let k = 1; k < cal.scores.length; k++) {
      expect(cal.scores[k]).toBeGreaterThanOrEqual(cal.scores[k - 1] as number);
    }
  });

  it('interpolates between levels and extends beyond them', () => {
    const cal = { levels: [0.5, 0.9, 0.99], scores: [0, 2, 5], samples: 10, source: 'live' as const };
    expect(scoreAt(cal, 0.9)).toBe(2);
    const mid = scoreAt(cal, 0.95);
    expect(mid).toBeGreaterThan(2);
    expect(mid).toBeLessThan(5);
    expect(scoreAt(cal, 0.999)).toBeCloseTo(5 + normalQuantile(0.999) - normalQuantile(0.99), 9);
    expect(scoreAt(cal, 0.2)).toBeCloseTo(normalQuantile(0.2), 9);
  });

  it('refuses to calibrate on nothing', () => {
    expect(() => fitCalibration([], 'live')).toThrow(/no samples/);
  });
});
