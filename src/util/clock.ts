/**
 * Time and randomness are injected everywhere an algorithm depends on them, so tests can drive a
 * virtual clock and a seeded generator (docs/architecture.md, "Code habits").
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number;
}

export type Random = () => number;

export const systemClock: Clock = {
  now: () => performance.now(),
};

export const systemRandom: Random = Math.random;

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/**
 * mulberry32: a small, fast, seedable PRNG with a full 2^32 period; good enough for load balancing and
 * simulation, not for cryptography. (Tommy Ettinger, public domain.)
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
