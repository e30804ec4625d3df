import type { Clock } from './clock.js';

/**
 * A retry budget (Finagle's RetryBudget, gRPC's retry throttling): every request deposits
 * percent/100 of a token, every retry withdraws one, so retries add at most `percent` % to the load a
 * pool sees, whatever the failure rate. The balance is capped so a quiet past cannot fund a storm, and a
 * small reserve refilled over time (minPerSecond) lets a lightly used pool retry at all. percent 0
 * disables retries.
 */
export class RetryBudget {
  private balance = 0;
  private reserve: number;
  private reserveAtMs: number;

  constructor(
    readonly percent: number,
    private readonly clock: Clock,
    private readonly opts: { minPerSecond: number; maxBalance: number } = {
      minPerSecond: 5,
      maxBalance: 100,
    },
  ) {
    this.reserve = percent > 0 ? opts.minPerSecond : 0;
    this.reserveAtMs = clock.now();
  }

  onRequest(): void {
    this.balance = Math.min(this.opts.maxBalance, this.balance + this.percent / 100);
  }

  /** Takes a token for one retry; false when the budget is spent. */
  tryWithdraw(): boolean {
    if (this.percent <= 0) return false;
    const now = this.clock.now();
    this.reserve = Math.min(
      this.opts.minPerSecond,
      this.reserve + ((now - this.reserveAtMs) / 1000) * this.opts.minPerSecond,
    );
    this.reserveAtMs = now;
    if (this.balance >= 1) {
      this.balance -= 1;
      return true;
    }
    if (this.reserve >= 1) {
      this.reserve -= 1;
      return true;
    }
    return false;
  }
}
