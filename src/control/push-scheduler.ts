import type { Clock } from '../util/clock.js';
import type { Timers } from '../util/timers.js';

/**
 * When to push to one router: an urgent change goes at once; routine ones are coalesced so a router
 * gets at most one routine push per interval, however often figures refresh (docs/architecture.md, "Control stream"). A push
 * carries everything pending, so an urgent push also delivers the routine changes queued before it.
 */
export class PushScheduler {
  private lastPush = -Infinity;
  private timer: unknown;
  private pending = false;

  constructor(
    private readonly intervalMs: number,
    private readonly clock: Clock,
    private readonly timers: Timers,
    private readonly push: () => void,
  ) {}

  notify(urgent: boolean): void {
    this.pending = true;
    if (urgent) return this.fire();
    if (this.timer !== undefined) return;
    const wait = this.lastPush + this.intervalMs - this.clock.now();
    if (wait <= 0) return this.fire();
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      if (this.pending) this.fire();
    }, wait);
  }

  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
  }

  private fire(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
    this.lastPush = this.clock.now();
    this.push();
  }
}
