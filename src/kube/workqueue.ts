import type { Random } from '../util/clock.js';
import { backoffMs } from '../util/backoff.js';

export type ReconcileResult = void | { requeueAfterMs?: number };

export interface WorkQueueOptions {
  /** Reconciles that may run at once; one key never runs twice at once. */
  concurrency: number;
  random: Random;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  onDepth?: (depth: number) => void;
}

/**
 * client-go's rate-limited work queue, reduced to what a level-based controller needs:
 * - a key added while queued is coalesced; added while running, it runs once more afterwards;
 * - a failure retries the key with exponential backoff (per key, reset on success);
 * - `requeueAfterMs` schedules a later run (the earliest pending one wins);
 * - at most `concurrency` keys are reconciled at once.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private active = 0;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly work: (key: string) => Promise<ReconcileResult>,
    private readonly opts: WorkQueueOptions,
    private readonly onError: (key: string, e: unknown, retryInMs: number) => void,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.opts.onDepth?.(this.queue.length);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const prev = this.delayed.get(key);
    if (prev && prev.at <= at) return;
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or running (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.queued.clear();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.concurrency && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.opts.onDepth?.(this.queue.length);
      this.active++;
      this.running.add(key);
      void this.runOne(key);
    }
  }

  private async runOne(key: string): Promise<void> {
    try {
      const r = await this.work(key);
      this.failures.delete(key);
      if (r && r.requeueAfterMs !== undefined) this.addAfter(key, r.requeueAfterMs);
    } catch (e) {
      const n = this.failures.get(key) ?? 0;
      this.failures.set(key, n + 1);
      const wait = backoffMs(n, this.opts.random, {
        initialMs: this.opts.baseBackoffMs ?? 100,
        maxMs: this.opts.maxBackoffMs ?? 60_000,
        multiplier: 2,
      });
      this.onError(key, e, wait);
      this.addAfter(key, wait);
    } finally {
      this.running.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
      if (this.queue.length === 0 && this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
