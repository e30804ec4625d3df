import { seededRandom } from '../util/clock.js';

/**
 * A seeded split: a Fisher–Yates shuffle of indices, the first ⌈fraction · n⌉ (at least one when
 * n ≥ 2) held out. Order within each part follows the input.
 */
export function splitHoldout<T>(
  samples: readonly T[],
  fraction: number,
  seed: number,
): { train: T[]; holdout: T[] } {
  const n = samples.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  const rnd = seededRandom(seed ^ 0x5eed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
  }
  const h = n >= 2 ? Math.min(n - 1, Math.max(1, Math.ceil(fraction * n))) : 0;
  const held = new Uint8Array(n);
  for (let k = 0; k < h; k++) held[idx[k] as number] = 1;
  const train: T[] = [];
  const holdout: T[] = [];
  samples.forEach((s, i) => (held[i] ? holdout : train).push(s));
  return { train, holdout };
}
