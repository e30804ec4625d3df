import { CallRing, type SimCall } from './call.js';
import type { EventQueue } from './event-queue.js';
import { effectiveSpeed, type EventSpec, type MethodCost, type ServerSpec } from './scenario.js';

/** Event kinds a server schedules on the run's queue. */
export const EV_COMPLETE = 1;
export const EV_RATE = 3;

/**
 * One backend, as bench/scenarios/README.md models it: `concurrency` slots run calls in parallel, the rest wait in a
 * FIFO queue. A call's work is its method's cost plus `costPerKiBMs` per KiB of payload (on this
 * server: over its group's `methodSpeed` for the method, the per-KiB part times its `perKiBFactor`),
 * times its log-normal noise; the server gets through work at
 *
 *     rate = speed · (1 − antagonistCpu / 2) / slowdown      (0 while paused)
 *
 * (an event's `antagonistCpu` replacing the group's during its window), so a slowdown or pause that begins while a call runs stretches that call too (a stalled process stalls
 * everything it holds). A call still queued when its deadline passes is dropped when its turn comes, as a
 * gRPC server that honours cancellation does; a running call always finishes its work, even for a client
 * that has gone. During an error window a call fails on arrival, `errorLatencyMs` later, with
 * probability errorRate, and holds no slot. In a `latencyMs` window, calls that start service then take
 * latencyMs (times their noise and any slowdown) whatever their method.
 *
 * Reported CPU (for telemetry) is the share of slot-time in use over the last interval, plus the
 * neighbour's `antagonistCpu` on top (its mean over the interval when events change it).
 */
export class SimServer {
  readonly index: number;
  readonly concurrency: number;
  /** The group's antagonist, outside any antagonistCpu event. */
  readonly antagonistCpu: number;
  /** Speed with the group's antagonist. */
  readonly speed: number;
  private readonly spec: ServerSpec;
  private readonly costs: MethodCost[] | undefined;
  rate: number;
  readonly running: (SimCall | undefined)[];
  nRunning = 0;
  readonly queue = new CallRing();
  /** Σ work (ms at rate 1, method cost × noise) of the calls in the queue, live or not. */
  queuedWork = 0;
  /** Slot-ms in use since the start, for CPU. */
  private busyIntegral = 0;
  private busyAt = 0;
  /** Most calls held at once (running + queued) since `countFromMs`. */
  maxHeld = 0;
  private readonly slowdowns: EventSpec[];
  private readonly pauses: EventSpec[];
  private readonly errors: EventSpec[];
  private readonly pinned: EventSpec[];
  private readonly antagonists: EventSpec[];

  constructor(
    spec: ServerSpec,
    events: readonly EventSpec[],
    private readonly q: EventQueue<SimCall>,
    /** A queued call dropped at its turn (its client had gone): its server side is done. */
    private readonly onDropped: (c: SimCall, now: number) => void,
    private readonly countFromMs = 0,
  ) {
    this.index = spec.index;
    this.concurrency = spec.concurrency;
    this.antagonistCpu = spec.antagonistCpu;
    this.speed = effectiveSpeed(spec);
    this.spec = spec;
    this.costs = spec.costs;
    this.running = new Array<SimCall | undefined>(spec.concurrency).fill(undefined);
    const mine = events.filter((e) => e.server === spec.index);
    this.slowdowns = mine.filter((e) => e.slowdown !== undefined);
    this.pauses = mine.filter((e) => e.pauseEveryS !== undefined);
    this.errors = mine.filter((e) => e.errorRate !== undefined);
    this.pinned = mine.filter((e) => e.latencyMs !== undefined);
    this.antagonists = mine.filter((e) => e.antagonistCpu !== undefined);
    this.rate = this.rateAt(0);
  }

  get held(): number {
    return this.nRunning + this.queue.length;
  }

  /** Slot-ms used so far; the difference over an interval / (concurrency · interval) is the CPU share. */
  busyMs(now: number): number {
    return this.busyIntegral + this.nRunning * (now - this.busyAt);
  }

  /** The failure probability and its latency for a call arriving now (0 when no error window is open). */
  errorRateAt(now: number): number {
    let p = 0;
    for (const e of this.errors) {
      if (now >= e.fromS * 1000 && now < e.toS * 1000) p = Math.max(p, e.errorRate as number);
    }
    return p;
  }

  private errorLatencyAt(now: number): number {
    let ms = 0;
    for (const e of this.errors) {
      if (now >= e.fromS * 1000 && now < e.toS * 1000) ms = Math.max(ms, e.errorLatencyMs);
    }
    return ms;
  }

  /**
   * A call reaches the server. Returns the delay after which it fails (≥ 0), or −1 when accepted (it
   * runs or waits for a slot; its completion is scheduled as EV_COMPLETE).
   */
  arrive(c: SimCall, now: number): number {
    const p = this.errorRateAt(now);
    if (p > 0 && c.failU < p) {
      c.serverDone = true;
      return this.errorLatencyAt(now);
    }
    if (now >= this.countFromMs && this.held + 1 > this.maxHeld) this.maxHeld = this.held + 1;
    if (this.nRunning < this.concurrency) this.start(c, now);
    else {
      this.queue.push(c);
      this.queuedWork += this.callWork(c);
    }
    return -1;
  }

  /** Work (ms at rate 1) a call starting service now carries. */
  workFor(c: SimCall, now: number): number {
    for (const e of this.pinned) {
      if (now >= e.fromS * 1000 && now < e.toS * 1000)
        return (e.latencyMs as number) * c.noise * this.speedAt(now);
    }
    return this.callWork(c);
  }

  /** A call's work on this server (ms at rate 1, noise included), outside a latencyMs window. */
  private callWork(c: SimCall): number {
    const m = this.costs?.[c.methodIndex];
    return m ? (m.costMs + (m.perKiBMs * c.payloadBytes) / 1024) * c.noise : c.baseWorkMs * c.noise;
  }

  /** EV_COMPLETE for a current `gen`: the call's work is done; its slot goes to the next live waiter. */
  finish(c: SimCall, now: number): void {
    this.free(c, now);
  }

  /**
   * A running call's client cancelled it, on a server that stops the work (scenario `cancelRunning`):
   * its pending completion is void (gen), its slot goes to the next live waiter. No-op for a call not
   * running here.
   */
  cancel(c: SimCall, now: number): void {
    if (c.serverDone || c.slot < 0 || this.running[c.slot] !== c) return;
    c.gen++;
    this.free(c, now);
  }

  private free(c: SimCall, now: number): void {
    this.account(now);
    const last = this.running[--this.nRunning] as SimCall;
    this.running[c.slot] = last;
    last.slot = c.slot;
    this.running[this.nRunning] = undefined;
    c.slot = -1;
    c.serverDone = true;
    while (this.nRunning < this.concurrency) {
      const next = this.queue.shift();
      if (!next) break;
      this.queuedWork -= this.callWork(next);
      if (next.clientDone || now >= next.deadlineAt) {
        next.serverDone = true;
        this.onDropped(next, now);
        continue;
      }
      this.start(next, now);
    }
  }

  /** EV_RATE: a slowdown or pause began or ended; running calls' completions move accordingly. */
  updateRate(now: number): void {
    const rate = this.rateAt(now);
    if (rate === this.rate) return;
    for (let i = 0; i < this.nRunning; i++) {
      const c = this.running[i] as SimCall;
      c.remaining = Math.max(0, c.remaining - (now - c.since) * this.rate);
      c.since = now;
      c.gen++;
      if (rate > 0) this.q.push(now + c.remaining / rate, EV_COMPLETE, c, c.gen);
    }
    this.rate = rate;
  }

  /** Time (ms) at which a call now running will finish at the current rate (Infinity while paused). */
  finishesAt(c: SimCall, now: number): number {
    if (this.rate <= 0) return Infinity;
    return now + Math.max(0, c.remaining - (now - c.since) * this.rate) / this.rate;
  }

  /** True while a pause holds the server at `t`. */
  pausedAt(t: number): boolean {
    for (const e of this.pauses) {
      const from = e.fromS * 1000;
      const to = e.toS * 1000;
      if (t < from || t >= to) continue;
      const every = (e.pauseEveryS as number) * 1000;
      const k = Math.floor((t - from) / every);
      if (t - (from + k * every) < (e.pauseMs as number)) return true;
    }
    return false;
  }

  /** The slowdown factor in force at `t` (product of the active ones). */
  slowdownAt(t: number): number {
    let f = 1;
    for (const e of this.slowdowns) if (t >= e.fromS * 1000 && t < e.toS * 1000) f *= e.slowdown as number;
    return f;
  }

  rateAt(t: number): number {
    return this.pausedAt(t) ? 0 : this.speedAt(t) / this.slowdownAt(t);
  }

  /** The antagonist's CPU at `t`: an event's while one is open (the highest where they overlap). */
  antagonistAt(t: number): number {
    let a = -1;
    for (const e of this.antagonists) {
      if (t >= e.fromS * 1000 && t < e.toS * 1000) a = Math.max(a, e.antagonistCpu as number);
    }
    return a < 0 ? this.antagonistCpu : a;
  }

  /** The antagonist's mean CPU over [from, to) (telemetry's figure for an interval). */
  antagonistOver(from: number, to: number): number {
    if (this.antagonists.length === 0) return this.antagonistCpu;
    if (!(to > from)) return this.antagonistAt(from);
    let sum = 0;
    for (let t = from; t < to;) {
      let next = to;
      for (const e of this.antagonists) {
        for (const b of [e.fromS * 1000, e.toS * 1000]) if (b > t && b < next) next = b;
      }
      sum += this.antagonistAt(t) * (next - t);
      t = next;
    }
    return sum / (to - from);
  }

  /** Speed with the antagonist in force at `t`. */
  private speedAt(t: number): number {
    if (this.antagonists.length === 0) return this.speed;
    return effectiveSpeed({ ...this.spec, antagonistCpu: this.antagonistAt(t) });
  }

  /** The next instant after `t` at which a slowdown, pause or antagonist starts or ends; Infinity when none. */
  nextChangeAfter(t: number): number {
    let next = Infinity;
    const consider = (b: number) => {
      if (b > t && b < next) next = b;
    };
    for (const e of this.slowdowns) {
      consider(e.fromS * 1000);
      consider(e.toS * 1000);
    }
    for (const e of this.antagonists) {
      consider(e.fromS * 1000);
      consider(e.toS * 1000);
    }
    for (const e of this.pauses) {
      const from = e.fromS * 1000;
      const to = e.toS * 1000;
      consider(from);
      consider(to);
      if (t < from || t >= to) continue;
      const every = (e.pauseEveryS as number) * 1000;
      const k = Math.floor((t - from) / every);
      for (let j = k; j <= k + 1; j++) {
        const s = from + j * every;
        if (s < to) {
          consider(s);
          consider(Math.min(to, s + (e.pauseMs as number)));
        }
      }
    }
    return next;
  }

  /** How long from `t` until the server next runs (0 when not paused now). */
  pauseLeft(t: number): number {
    let u = t;
    for (let i = 0; i < 64 && this.pausedAt(u); i++) u = this.nextChangeAfter(u);
    return u - t;
  }

  private start(c: SimCall, now: number): void {
    this.account(now);
    c.slot = this.nRunning;
    this.running[this.nRunning++] = c;
    c.remaining = this.workFor(c, now);
    c.since = now;
    c.gen++;
    if (this.rate > 0) this.q.push(now + c.remaining / this.rate, EV_COMPLETE, c, c.gen);
  }

  private account(now: number): void {
    this.busyIntegral += this.nRunning * (now - this.busyAt);
    this.busyAt = now;
  }
}
