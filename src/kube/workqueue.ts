import type { Random } from '../util/clock.js';
import { backoffMs } from '../util/backoff.js';

export type ReconcileResult = void | { requeueAfterMs?: number };

/**
 * Which lane a key waits in. `event`: something changed (an object's spec, an EndpointSlice): what a
 * user or a data plane waits for. `routine`: a key that comes round anyway (a timed requeue, a retry,
 * a resync, fresh telemetry).
 */
export type Lane = 'event' | 'routine';

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
 * - at most `concurrency` keys are reconciled at once;
 * - two lanes: `event` keys go before `routine` ones, and a routine key added as an event moves up.
 *   After controller-runtime's priority queue (pkg/controller/priorityqueue, v0.20: handler events
 *   ahead of the initial list and resyncs). At 500 pools every pool comes round each telemetry
 *   interval, and in one FIFO a changed EndpointSlice waited behind most of the fleet's routine
 *   reconciles (bench/results/scale.md: p99 49 s from the change to the data planes).
 *   Routine keys cannot starve while events come slower than reconciles finish.
 */
export class WorkQueue {
  private readonly events: string[] = [];
  private readonly routine: string[] = [];
  private readonly queued = new Map<string, Lane>();
  private readonly running = new Set<string>();
  /** Keys added while they ran, with the lane they come back in. */
  private readonly dirty = new Map<string, Lane>();
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

  add(key: string, lane: Lane = 'routine'): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      if (this.dirty.get(key) !== 'event') this.dirty.set(key, lane);
      return;
    }
    const was = this.queued.get(key);
    if (was === 'event' || was === lane) return;
    if (was === 'routine') this.routine.splice(this.routine.indexOf(key), 1);
    this.queued.set(key, lane);
    (lane === 'event' ? this.events : this.routine).push(key);
    this.opts.onDepth?.(this.depth);
    this.pump();
  }

  /** A routine run of `key` in `ms` (a requeue, a retry); the earliest pending one wins. */
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
    return this.events.length + this.routine.length;
  }

  /** Resolves when nothing is queued or running (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.depth === 0 && this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.events.length = 0;
    this.routine.length = 0;
    this.queued.clear();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.concurrency && this.depth > 0) {
      const key = (this.events.length > 0 ? this.events : this.routine).shift() as string;
      this.queued.delete(key);
      this.opts.onDepth?.(this.depth);
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
      const again = this.dirty.get(key);
      if (again) {
        this.dirty.delete(key);
        this.add(key, again);
      }
      this.pump();
      if (this.depth === 0 && this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
