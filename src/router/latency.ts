/**
 * The router's own recent latencies per method, for hedging's "Predicted" delay when the operator has
 * pushed no prediction: the p90 of the last `size` successful calls of that method. The quantile is
 * recomputed every `size / 8` samples, so a hedge decision costs a map lookup.
 */
export class LatencyTracker {
  private readonly byMethod = new Map<string, { ring: Float64Array; n: number; p90?: number }>();

  constructor(
    private readonly size = 256,
    private readonly minSamples = 20,
    private readonly maxMethods = 1000,
  ) {}

  record(method: string, ms: number): void {
    let e = this.byMethod.get(method);
    if (!e) {
      if (this.byMethod.size >= this.maxMethods) return;
      e = { ring: new Float64Array(this.size), n: 0 };
      this.byMethod.set(method, e);
    }
    e.ring[e.n % this.size] = ms;
    e.n++;
    if (e.n >= this.minSamples && (e.p90 === undefined || e.n % Math.max(1, this.size / 8) === 0)) {
      const sorted = Float64Array.from(e.ring.subarray(0, Math.min(e.n, this.size))).sort();
      e.p90 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))];
    }
  }

  /** The recent p90 of `method`, ms, or undefined before minSamples calls. */
  p90(method: string): number | undefined {
    return this.byMethod.get(method)?.p90;
  }
}
