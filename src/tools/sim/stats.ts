/**
 * Mean and 95% confidence interval over seeds: mean ± t(0.975, n − 1) · s / √n, Student's t because a
 * handful of seeds is a small sample. With one seed the interval is the point itself.
 */
const T975 = [
  NaN,
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

function tQuantile975(df: number): number {
  return df < T975.length ? (T975[df] as number) : 1.96 + 2.4 / df;
}

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
}

export function meanInterval(xs: readonly number[]): Interval {
  const v = xs.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, lo: mean, hi: mean };
  const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) * (x - mean), 0) / (n - 1));
  const h = (tQuantile975(n - 1) * sd) / Math.sqrt(n);
  return { mean, lo: mean - h, hi: mean + h };
}
