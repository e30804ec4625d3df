import { noise } from '../backend/model.js';
import { seededRandom, type Random } from '../../util/clock.js';

/**
 * Random streams for one run. Each concern draws from its own generator, seeded from the run's seed and
 * the stream's name, so the calls (arrival times, methods, payloads, noise) are the same whatever policy
 * routes them: policies are compared on common random numbers, and a change in one policy's draws does
 * not reshuffle the workload.
 */
export function stream(seed: number, name: string): Random {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return seededRandom((h ^ (h >>> 16)) >>> 0);
}

/** An exponential draw with the given mean. */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** A log-uniform draw on [lo, hi] (lo > 0), or lo when the range is empty. */
export function logUniform(random: Random, lo: number, hi: number): number {
  return hi > lo ? lo * Math.exp(random() * Math.log(hi / lo)) : lo;
}

/** Log-normal noise with mean 1 and σ = sigma: the backend's own (src/tools/backend/model.ts). */
export function lognormalNoise(random: Random, sigma: number): number {
  return noise(sigma, random);
}

/** σ of the service-time noise (bench/scenarios/README.md). */
export const NOISE_SIGMA = 0.3;
