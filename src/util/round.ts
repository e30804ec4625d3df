/** `x` rounded to `digits` decimal places (figures in status and on the wire). */
export function roundTo(x: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}

/** `x` to `figures` significant figures (1234 → 1200 with 2): a count that should not churn status. */
export function roundSignificant(x: number, figures: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const step = 10 ** (Math.floor(Math.log10(Math.abs(x))) + 1 - figures);
  return Math.round(x / step) * step;
}
