/**
 * The router's own recent latencies per method: the fallback of hedging's "Predicted" delay and of
 * per-try deadlines (try-deadline.ts) when no model prediction is at hand, from the last `size`
 * successful calls of that method. The sorted window is rebuilt every `size / 8` samples, so a
 * quantile costs a map lookup and an index.
 */
export class LatencyTracker {
  private readonly byMethod = new Map<string, { ring: Float64Array; n: number; sorted?: Float64Array }>();

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
    if (e.n >= this.minSamples && (e.sorted === undefined || e.n % Math.max(1, this.size / 8) === 0)) {
      e.sorted = Float64Array.from(e.ring.subarray(0, Math.min(e.n, this.size))).sort();
    }
  }

  /**
   * The recent q-quantile of `method`, ms (the ⌊n·q⌋-th smallest of the window, 0-based), or
   * undefined before minSamples calls.
   */
  quantile(method: string, q: number): number | undefined {
    const sorted = this.byMethod.get(method)?.sorted;
    if (!sorted || !(q >= 0 && q <= 1)) return undefined;
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  }
}
