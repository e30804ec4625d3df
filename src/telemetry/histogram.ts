/**
 * Latency histograms as routers report them: counts per bucket with upper bounds (ms), the last
 * bucket unbounded. Fixed, shared bounds make merging across routers a plain sum.
 */
export const LATENCY_BOUNDS_MS = [
  0.25,
  0.5,
  1,
  2,
  3,
  5,
  7.5,
  10,
  15,
  20,
  30,
  50,
  75,
  100,
  150,
  200,
  300,
  500,
  750,
  1000,
  2000,
  5000,
  10_000,
  Infinity,
];

export function bucketOf(ms: number, bounds: readonly number[] = LATENCY_BOUNDS_MS): number {
  let lo = 0;
  let hi = bounds.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ms <= (bounds[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The q-quantile of a histogram, interpolated linearly inside its bucket (as Prometheus's
 * histogram_quantile does); the unbounded bucket answers with its lower bound.
 */
export function quantile(
  counts: readonly number[],
  q: number,
  bounds: readonly number[] = LATENCY_BOUNDS_MS,
): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] as number;
    if (seen + c >= rank && c > 0) {
      const lo = i === 0 ? 0 : (bounds[i - 1] as number);
      const hi = bounds[i] as number;
      if (!Number.isFinite(hi)) return lo;
      return lo + ((hi - lo) * (rank - seen)) / c;
    }
    seen += c;
  }
  return bounds[bounds.length - 2];
}

/**
 * Adds counts kept over other bounds (ms, ascending; bucket i holds (bounds[i-1], bounds[i]], the
 * first from 0) into `into`, a histogram over LATENCY_BOUNDS_MS. Each source bucket is spread
 * uniformly over the part of its range each target bucket covers, the assumption Prometheus'
 * histogram_quantile makes inside a bucket; a source bucket without an upper bound goes whole to the
 * target bucket just above its lower bound. Counts may come out fractional.
 */
export function rebucketInto(bounds: readonly number[], counts: readonly number[], into: number[]): void {
  let lo = 0;
  for (let i = 0; i < bounds.length; i++) {
    const hi = bounds[i] as number;
    const c = counts[i] ?? 0;
    if (c > 0) {
      if (!Number.isFinite(hi) || hi <= lo) {
        const j = Number.isFinite(hi) ? bucketOf(hi) : LATENCY_BOUNDS_MS.findIndex((b) => b > lo);
        into[j] = (into[j] as number) + c;
      } else {
        let blo = 0;
        for (let j = 0; j < LATENCY_BOUNDS_MS.length && blo < hi; j++) {
          const bhi = LATENCY_BOUNDS_MS[j] as number;
          const overlap = Math.min(hi, bhi) - Math.max(lo, blo);
          if (overlap > 0) into[j] = (into[j] as number) + (c * overlap) / (hi - lo);
          blo = bhi;
        }
      }
    }
    lo = hi;
  }
}
