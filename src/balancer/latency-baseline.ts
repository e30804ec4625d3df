import { decay } from './common.js';

/**
 * What a call of some method costs on a typical endpoint, as a function of its payload: an exponentially
 * weighted least-squares line, latency ≈ a + slope · KiB, over recent calls (weights exp(−age/τ)).
 * Predictive divides each endpoint's latencies by it, so an endpoint that happened to serve the heavy
 * calls is not taken for a slow one. The slope is kept ≥ 0 (bigger requests never cost less); with no
 * spread in payloads the line is flat, the decayed mean.
 *
 * Outliers are down-weighted: once the line has a couple of samples to stand on, a call slower than
 * `outlierFactor` (8) × its prediction counts with weight (outlierFactor · prediction / latency)², so
 * its pull on the line falls as it grows (bounded influence). A "typical endpoint" is what the pool
 * mostly does: without this one endpoint at 1,000 ms in a 3 ms pool lifted the baseline several-fold,
 * every healthy endpoint then looked faster than typical, and a recovered one, which Predictive
 * fades back to typical (ratio 1), looked slower than all of them and got nothing. If the whole
 * pool slows down, every sample is down-weighted alike and the weighted mean still follows, only
 * more slowly.
 */
export class LatencyBaseline {
  private s = 0;
  private sx = 0;
  private sy = 0;
  private sxx = 0;
  private sxy = 0;
  private syy = 0;
  private atMs = 0;

  constructor(
    private readonly tauMs: number,
    private readonly outlierFactor = 8,
  ) {}

  /** The decayed number of samples behind the line. */
  weight(now: number): number {
    return this.s * decay(now - this.atMs, this.tauMs);
  }

  add(kib: number, latencyMs: number, now: number): void {
    const d = decay(now - this.atMs, this.tauMs);
    let w = 1;
    if (this.s * d >= 2) {
      const cap = this.outlierFactor * this.predict(kib);
      if (latencyMs > cap) w = (cap / latencyMs) ** 2;
    }
    this.s = this.s * d + w;
    this.sx = this.sx * d + w * kib;
    this.sy = this.sy * d + w * latencyMs;
    this.sxx = this.sxx * d + w * kib * kib;
    this.sxy = this.sxy * d + w * kib * latencyMs;
    this.syy = this.syy * d + w * latencyMs * latencyMs;
    this.atMs = Math.max(this.atMs, now);
  }

  /** The decayed mean payload, KiB. */
  meanKiB(): number {
    return this.s > 0 ? this.sx / this.s : 0;
  }

  /** The decayed mean latency, ms (of all payloads). */
  mean(): number {
    return this.s > 0 ? this.sy / this.s : 0;
  }

  /** Predicted latency (ms) for a payload of `kib`; at least 1 µs. Decay scales all sums alike, so
   * the line needs no decay to read. */
  predict(kib: number): number {
    return this.at(kib, this.slope());
  }

  /** The fitted slope, ms per KiB: ≥ 0 (bigger requests never cost less), 0 without payload spread. */
  slope(): number {
    const v = this.s * this.sxx - this.sx * this.sx;
    return v > 1e-9 * this.s * this.s ? Math.max(0, (this.s * this.sxy - this.sx * this.sy) / v) : 0;
  }

  /**
   * predict, with the slope shrunk towards `priorSlope` by the evidence against it: prior + (b −
   * prior) · max(0, 1 − 4/t²), t = (b − prior) / se(b) — a positive-part James–Stein rule for one
   * coefficient (Efron & Morris 1973). For a line fitted to few, noisy calls (one endpoint's, in
   * signals.ts classStructure): a slope that differs from the prior by noise reads as the prior, a real
   * difference (t ≫ 2) is kept almost whole.
   */
  predictShrunk(kib: number, priorSlope: number): number {
    const b = this.slope();
    const sxxC = this.sxx - (this.sx * this.sx) / this.s; // Σw(x − x̄)²
    if (!(this.s > 3 && sxxC > 0)) return this.at(kib, priorSlope);
    const syyC = this.syy - (this.sy * this.sy) / this.s;
    const ols = (this.sxy - (this.sx * this.sy) / this.s) / sxxC;
    const rss = Math.max(0, syyC - ols * ols * sxxC);
    const d = b - priorSlope;
    const t2 = (d * d * sxxC * (this.s - 2)) / Math.max(rss, 1e-12 * Math.abs(syyC), 1e-300);
    return this.at(kib, priorSlope + d * Math.max(0, 1 - 4 / t2));
  }

  /** The line through the decayed means with slope `slope`, at `kib`; at least 1 µs. */
  private at(kib: number, slope: number): number {
    return Math.max(1e-3, (this.sy - slope * this.sx) / this.s + slope * kib);
  }
}
