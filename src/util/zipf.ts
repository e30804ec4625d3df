import type { Random } from './clock.js';

/**
 * Draws ranks 0..n-1 with Zipf's law, P(k) ∝ 1 / (k + 1)^s (s ≈ 1 for web and RPC key popularity:
 * Breslau et al., "Web caching and Zipf-like distributions", INFOCOM 1999). The cumulative weights
 * are computed once; each draw is a binary search, so a draw costs O(log n).
 */
export class Zipf {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Zipf needs n >= 1, got ${n}`);
    if (!(s >= 0)) throw new RangeError(`Zipf needs s >= 0, got ${s}`);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = sum += 1 / Math.pow(k + 1, s);
    for (let k = 0; k < n; k++) this.cdf[k] = (this.cdf[k] as number) / sum;
  }

  /** The probability of rank k. */
  p(k: number): number {
    return (this.cdf[k] as number) - (k > 0 ? (this.cdf[k - 1] as number) : 0);
  }

  /** One rank, from a uniform draw in [0, 1). */
  draw(random: Random): number {
    const u = random();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
