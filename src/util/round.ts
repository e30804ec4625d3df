/** `x` rounded to `digits` decimal places (figures in status and on the wire). */
export function roundTo(x: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}
