/**
 * The calls of one window, as a delay-based Limit judges them: how many, their mean round-trip time and
 * its standard error (answered calls only: a dropped call's time says nothing of the queue), whether any
 * dropped, and the calls in flight when each was admitted (the most, and the mean: Little's L).
 */
export class RttWindow {
  /** End of the first call, ms. */
  fromMs = NaN;
  answered = 0;
  drops = 0;
  /** Most calls in flight at an admission. */
  used = 0;
  private sum = 0;
  private sumSq = 0;
  private inflightSum = 0;

  add(endMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    if (this.calls === 0) this.fromMs = endMs;
    if (dropped) this.drops++;
    else {
      this.answered++;
      this.sum += rttMs;
      this.sumSq += rttMs * rttMs;
    }
    if (inflight > this.used) this.used = inflight;
    this.inflightSum += inflight;
  }

  get calls(): number {
    return this.answered + this.drops;
  }

  /** Mean RTT of the answered calls, ms; undefined when none was. */
  get mean(): number | undefined {
    return this.answered > 0 ? this.sum / this.answered : undefined;
  }

  /** Standard error of the mean (the mean itself while one call says nothing of the spread). */
  get se(): number {
    const n = this.answered;
    if (n === 0) return Infinity;
    const mean = this.sum / n;
    if (n < 2) return mean;
    return Math.sqrt(Math.max(0, (this.sumSq - n * mean * mean) / (n - 1)) / n);
  }

  /** Calls in flight, on average over the admissions (Little's L). */
  get load(): number {
    return this.calls > 0 ? this.inflightSum / this.calls : 0;
  }
}
