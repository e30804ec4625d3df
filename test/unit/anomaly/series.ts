import { seededRandom, type Random } from '../../../src/util/clock.js';

/** Standard normal draws from a seeded uniform source (Box–Muller). */
export function normal(rand: Random): () => number {
  return () => {
    const u = 1 - rand(); // (0, 1]: log is finite
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** Log-normal noise around a median: median · exp(σ·N(0,1)). */
export function logNormal(seed: number, median: number, sigma: number): () => number {
  const n = normal(seededRandom(seed));
  return () => median * Math.exp(sigma * n());
}

/** Gaussian noise clipped into [lo, hi] (ratios and rates). */
export function clippedNormal(seed: number, mean: number, sd: number, lo = 0, hi = 1): () => number {
  const n = normal(seededRandom(seed));
  return () => Math.min(hi, Math.max(lo, mean + sd * n()));
}

export function take(gen: () => number, count: number): number[] {
  return Array.from({ length: count }, gen);
}
