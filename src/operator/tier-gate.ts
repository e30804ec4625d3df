import type { Timers, TimerHandle } from '../util/timers.js';

/**
 * Pools wait, when leadership starts, for each CacheTier's first reconcile (for `timeoutMs` at most),
 * so a pool's first routing entry already carries its cache: an entry without one would make routers
 * drop their L1 on failover.
 */
export class TierGate {
  private pending = new Set<string>();
  private release: () => void = () => {};
  private passed: Promise<void> = Promise.resolve();
  private timer?: TimerHandle;

  constructor(
    private readonly timers: Timers,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Closes the gate until every one of `tiers` was reconciled once, or the timeout passed. */
  close(tiers: Iterable<string>): void {
    this.open();
    this.pending = new Set(tiers);
    if (this.pending.size === 0) return;
    this.passed = new Promise<void>((r) => (this.release = r));
    this.timer = this.timers.setTimeout(() => this.open(), this.timeoutMs);
  }

  /** A tier's reconcile ended (well or not). */
  reconciled(tier: string): void {
    if (this.pending.delete(tier) && this.pending.size === 0) this.open();
  }

  /** Resolves once the gate is open. */
  wait(): Promise<void> {
    return this.passed;
  }

  /** Opens the gate now (leadership ended, or the timeout passed). */
  open(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.release();
  }
}
