import type { Clock } from '../util/clock.js';
import { SibylError } from '../util/errors.js';
import type { Timers, TimerHandle } from '../util/timers.js';
import type { Limit } from './types.js';

/**
 * Enforces a `Limit` (Netflix's SimpleLimiter / PartitionedLimiter, with Google-style criticality):
 * a call takes a token while fewer calls than its priority's capacity are in flight, and gives it back
 * with the outcome, which feeds the Limit.
 *
 * Priorities share one limit L but not equally, so under overload sheddable work goes first, then
 * default, and critical last:
 *
 *   capacity(critical)  = L
 *   capacity(default)   = L − ⌊L · reserve.default⌋          (headroom kept for critical calls)
 *   capacity(sheddable) = L − round(L · reserve.sheddable)   (at least 1 each)
 *
 * The sheddable reserve is rounded, not floored, so that small limits keep an order too: at a backend
 * with two slots (a limit of 2, where the QueueDelay limit settles) a quarter is half a slot, and
 * sheddable calls may hold one. The default reserve stays floored: rounded, a limit of 8 would keep its
 * last slot for critical calls alone, idle whenever none waits (a goodput the limit cannot spare).
 *
 * Over capacity, a call waits in a bounded queue, never past its deadline; freed slots go to the highest
 * priority first, FIFO within one. A full queue makes room by shedding its newest waiter of the lowest
 * priority, if lower than the newcomer's; else the newcomer is shed. Whatever can be answered at once is
 * answered at once (a settled promise, no timer).
 *
 * How long a call may wait: `maxWaitMs` when given; else a tenth of the calls' typical RTT (an average
 * of the RTTs released), at least 5 ms and at most 50 ms. The wait is there so that a slot freed a moment
 * after a call was turned away is not left idle: with a limit held at a backend's own concurrency (what
 * the QueueDelay limit aims for), a fixed 5 ms wait at 100 ms calls lost about 5% of the capacity to
 * such idle slots on test/resilience/overload.test.ts's pool; a tenth of the RTT keeps the wait small
 * against the call's own time, whatever that time is.
 *
 * Options: maxWaitMs (RTT-scaled), maxQueue (64), reserve.default (0.1), reserve.sheddable (0.25).
 */
export type Priority = 'critical' | 'default' | 'sheddable';
export const PRIORITIES: readonly Priority[] = ['critical', 'default', 'sheddable'];

export type ReleaseOutcome = 'success' | 'dropped' | 'ignore';

export interface AcquireOptions {
  priority?: Priority;
  /** Absolute deadline on the limiter's Clock, ms; a call never waits past it. */
  deadlineMs?: number;
}

export interface Token {
  readonly priority: Priority;
  readonly startMs: number;
  /** Calls in flight when this one was admitted, itself included. */
  readonly inflightAtStart: number;
  /**
   * Gives the slot back. 'success' and 'dropped' (timed out, or refused by the server for load) feed the
   * Limit with `rttMs` (default: time since admission); 'ignore' (cancelled, or a failure that says
   * nothing about load) does not. Only the first call counts.
   */
  release(outcome: ReleaseOutcome, rttMs?: number): void;
}

export interface LimiterOptions {
  maxWaitMs?: number;
  maxQueue?: number;
  reserve?: { default?: number; sheddable?: number };
}

export interface LimiterDeps {
  clock: Clock;
  timers: Timers;
}

interface Waiter {
  priority: Priority;
  resolve: (t: Token) => void;
  reject: (e: SibylError) => void;
  timer: TimerHandle;
}

const RANK: Record<Priority, 0 | 1 | 2> = { critical: 0, default: 1, sheddable: 2 };
const MIN_WAIT_MS = 5;
const MAX_WAIT_MS = 50;
const WAIT_SHARE = 0.1;

export class Limiter {
  private inFlight = 0;
  private readonly queues: [Waiter[], Waiter[], Waiter[]] = [[], [], []]; // by RANK
  private readonly maxWaitMs: number | undefined;
  /** An average of the RTTs released, ms (0 before the first). */
  private rttMs = 0;
  private readonly maxQueue: number;
  private readonly reserveDefault: number;
  private readonly reserveSheddable: number;

  constructor(
    private readonly algorithm: Limit,
    private readonly deps: LimiterDeps,
    options: LimiterOptions = {},
  ) {
    this.maxWaitMs = options.maxWaitMs === undefined ? undefined : Math.max(0, options.maxWaitMs);
    this.maxQueue = Math.max(0, Math.floor(options.maxQueue ?? 64));
    this.reserveDefault = options.reserve?.default ?? 0.1;
    this.reserveSheddable = options.reserve?.sheddable ?? 0.25;
    if (!(
      this.reserveDefault >= 0 &&
      this.reserveDefault <= this.reserveSheddable &&
      this.reserveSheddable < 1
    )) {
      throw new SibylError(
        'ERR_CONFIG_INVALID',
        'limiter reserves must satisfy 0 <= default <= sheddable < 1',
      );
    }
  }

  get limit(): number {
    return this.algorithm.limit;
  }

  get inflight(): number {
    return this.inFlight;
  }

  get queued(): number {
    return this.queues[0].length + this.queues[1].length + this.queues[2].length;
  }

  /** How long a call may wait for a slot now, ms. */
  get waitMs(): number {
    return this.maxWaitMs ?? Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, WAIT_SHARE * this.rttMs));
  }

  /** How many calls of `priority` may be in flight at the current limit. */
  capacity(priority: Priority): number {
    const l = this.algorithm.limit;
    const reserve =
      priority === 'critical' ? 0 : priority === 'default' ? this.reserveDefault : this.reserveSheddable;
    const kept = priority === 'sheddable' ? Math.round(l * reserve) : Math.floor(l * reserve);
    return Math.max(1, l - kept);
  }

  /** A token now, or undefined when over capacity; never waits. */
  tryAcquire(options: AcquireOptions = {}): Token | undefined {
    const p = options.priority ?? 'default';
    return this.inFlight < this.capacity(p) ? this.grant(p) : undefined;
  }

  /** A token, at once or after a short wait; rejects with SibylError ERR_SHED when shed. */
  acquire(options: AcquireOptions = {}): Promise<Token> {
    const p = options.priority ?? 'default';
    if (this.inFlight < this.capacity(p)) return Promise.resolve(this.grant(p));
    const wait = Math.min(this.waitMs, (options.deadlineMs ?? Infinity) - this.deps.clock.now());
    if (!(wait > 0)) return Promise.reject(this.shedError(p, 'no time left to wait'));
    if (this.queued >= this.maxQueue && !this.evictBelow(p)) {
      return Promise.reject(this.shedError(p, 'queue full'));
    }
    return new Promise<Token>((resolve, reject) => {
      const w: Waiter = { priority: p, resolve, reject, timer: undefined };
      w.timer = this.deps.timers.setTimeout(() => {
        this.remove(w);
        reject(this.shedError(p, `waited ${wait}ms`));
      }, wait);
      this.queues[RANK[p]].push(w);
    });
  }

  private grant(priority: Priority): Token {
    const startMs = this.deps.clock.now();
    const inflightAtStart = ++this.inFlight;
    let released = false;
    return {
      priority,
      startMs,
      inflightAtStart,
      release: (outcome, rttMs) => {
        if (released) return;
        released = true;
        this.inFlight--;
        if (outcome !== 'ignore') {
          const rtt = rttMs ?? this.deps.clock.now() - startMs;
          this.algorithm.onSample(startMs, rtt, inflightAtStart, outcome === 'dropped');
          if (outcome === 'success' && rtt > 0) this.rttMs += (rtt - this.rttMs) * (this.rttMs ? 0.05 : 1);
        }
        this.dispatch();
      },
    };
  }

  /** Hands freed capacity to waiters, highest priority first; capacities nest, so stop at the first misfit. */
  private dispatch(): void {
    for (const q of this.queues) {
      while (q.length > 0) {
        const w = q[0] as Waiter;
        if (this.inFlight >= this.capacity(w.priority)) return;
        q.shift();
        this.deps.timers.clearTimeout(w.timer);
        w.resolve(this.grant(w.priority));
      }
    }
  }

  /** Sheds the newest waiter of the lowest priority below `p`, if any. */
  private evictBelow(p: Priority): boolean {
    for (let r = 2; r > RANK[p]; r--) {
      const w = this.queues[r as 0 | 1 | 2].pop();
      if (!w) continue;
      this.deps.timers.clearTimeout(w.timer);
      w.reject(this.shedError(w.priority, 'displaced by a higher-priority call'));
      return true;
    }
    return false;
  }

  private remove(w: Waiter): void {
    const q = this.queues[RANK[w.priority]];
    const i = q.indexOf(w);
    if (i >= 0) q.splice(i, 1);
  }

  private shedError(p: Priority, why: string): SibylError {
    return new SibylError(
      'ERR_SHED',
      `${p} call shed (${why}): ${this.inFlight} in flight, capacity ${this.capacity(p)} of limit ${this.algorithm.limit}`,
    );
  }
}
