import type { PickRequest } from '../../balancer/index.js';
import type { CallHandle, Choosable } from '../../balancer/picker.js';
import type { Token } from '../../limit/index.js';

/**
 * One simulated call, from the client's arrival at a router to its answer, and the server's side of it.
 * It is also the `PickRequest` handed to the policies (method and payload), so a pick allocates nothing;
 * the Oracle reads the true figures (work, noise) that no real router could.
 *
 * Calls are pooled: a call is returned to the pool once both the client side (answered, failed, timed
 * out or shed) and the server side (finished, failed, dropped, or never sent) are done. `serial` is
 * unique per use, so a record of a call kept elsewhere (a ring entry) can tell whether it is stale;
 * `gen` counts reschedulings of its completion, so an event for an old completion time is ignored.
 */
export class SimCall implements PickRequest {
  serial = 0;
  gen = 0;
  method = '';
  methodIndex = 0;
  payloadBytes = 0;
  /** Work at speed 1 for its method and payload, ms (before noise). */
  baseWorkMs = 0;
  /** The call's log-normal noise factor, drawn at arrival. */
  noise = 1;
  /** Uniform draw deciding whether a failing server fails it. */
  failU = 0;
  router = 0;
  server = -1;
  startMs = 0;
  deadlineAt = 0;
  /** Started after warm-up: counted in the results. */
  measured = false;
  /** A probe: a shadow copy of a client's call (copyOf), its answer for the policy only. */
  probe = false;
  /** The call's handle on the endpoint its router picked. */
  call: CallHandle<Choosable> | undefined;
  token: Token | undefined;
  /** Server side: remaining work (ms at rate 1), and its slot among the server's running calls. */
  remaining = 0;
  /** When `remaining` was last brought up to date, ms. */
  since = 0;
  slot = -1;
  clientDone = false;
  serverDone = false;
  /** The call's own deadline; with per-try deadlines a try's `deadlineAt` (the server's) may be earlier. */
  callDeadlineAt = 0;
  /**
   * With hedging or per-try deadlines (try-policy.ts), every try of a call is a SimCall and `first`
   * (checked with `firstSerial`) is the call's first try, which keeps the call's state: `open` until
   * the call is answered (it is not reused before), its live `tries`, the servers `tried`, `hedged`.
   */
  first: SimCall | undefined;
  firstSerial = 0;
  open = false;
  readonly tries: SimCall[] = [];
  readonly tried: number[] = [];
  hedged = false;
  /** In the pool's free list (release is idempotent). */
  pooled = false;

  /** Makes this call a probe: a copy of `c` (same method, payload and work), started at `now`. */
  copyOf(c: SimCall, now: number): this {
    this.probe = true;
    this.method = c.method;
    this.methodIndex = c.methodIndex;
    this.payloadBytes = c.payloadBytes;
    this.baseWorkMs = c.baseWorkMs;
    this.noise = c.noise;
    this.failU = c.failU;
    this.router = c.router;
    this.startMs = now;
    this.deadlineAt = c.callDeadlineAt;
    this.callDeadlineAt = c.callDeadlineAt;
    return this;
  }

  /**
   * Makes this call another try of `first`'s call (a hedge or a retry), started at `now`: the same
   * method, payload and work, its own noise and failure draw (server-side variation is independent
   * between servers).
   */
  tryOf(first: SimCall, now: number, noise: number, failU: number): this {
    this.method = first.method;
    this.methodIndex = first.methodIndex;
    this.payloadBytes = first.payloadBytes;
    this.baseWorkMs = first.baseWorkMs;
    this.noise = noise;
    this.failU = failU;
    this.router = first.router;
    this.startMs = now;
    this.callDeadlineAt = this.deadlineAt = first.callDeadlineAt;
    this.first = first;
    this.firstSerial = first.serial;
    return this;
  }
}

export class CallPool {
  private readonly free: SimCall[] = [];
  private serial = 0;

  take(): SimCall {
    const c = this.free.pop() ?? new SimCall();
    c.serial = ++this.serial;
    c.pooled = false;
    c.server = -1;
    c.call = undefined;
    c.token = undefined;
    c.slot = -1;
    c.probe = false;
    c.clientDone = false;
    c.serverDone = false;
    c.first = undefined;
    c.open = false;
    c.tries.length = 0;
    c.tried.length = 0;
    c.hedged = false;
    return c;
  }

  /** Returns the call to the pool if both its sides are done. */
  release(c: SimCall): void {
    if (c.clientDone && c.serverDone && !c.open && !c.pooled) {
      c.pooled = true;
      c.call = undefined;
      c.token = undefined;
      this.free.push(c);
    }
  }
}

/**
 * A FIFO of calls that may end out of order (open calls per endpoint, pending deadlines): entries keep
 * the call's serial, and `head()` skips the ones whose call has moved on (`done(call)` true, or the call
 * recycled). Grows by doubling; never shrinks.
 */
export class CallRing {
  private calls: (SimCall | undefined)[] = new Array<SimCall | undefined>(16).fill(undefined);
  private serials = new Float64Array(16);
  private start = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(c: SimCall): void {
    if (this.count === this.calls.length) this.grow();
    const i = (this.start + this.count) & (this.calls.length - 1);
    this.calls[i] = c;
    this.serials[i] = c.serial;
    this.count++;
  }

  /** The oldest live call, dropping stale entries before it; undefined when none. */
  head(done: (c: SimCall) => boolean): SimCall | undefined {
    while (this.count > 0) {
      const c = this.calls[this.start] as SimCall;
      if (c.serial === this.serials[this.start] && !done(c)) return c;
      this.shift();
    }
    return undefined;
  }

  /** The k-th entry from the head (0 = head) if still live, else undefined. */
  at(k: number): SimCall | undefined {
    if (k < 0 || k >= this.count) return undefined;
    const i = (this.start + k) & (this.calls.length - 1);
    const c = this.calls[i] as SimCall;
    return c.serial === this.serials[i] ? c : undefined;
  }

  shift(): SimCall | undefined {
    if (this.count === 0) return undefined;
    const c = this.calls[this.start];
    this.calls[this.start] = undefined;
    this.start = (this.start + 1) & (this.calls.length - 1);
    this.count--;
    return c;
  }

  private grow(): void {
    const n = this.calls.length;
    const calls = new Array<SimCall | undefined>(n * 2).fill(undefined);
    const serials = new Float64Array(n * 2);
    for (let k = 0; k < this.count; k++) {
      const i = (this.start + k) & (n - 1);
      calls[k] = this.calls[i];
      serials[k] = this.serials[i] as number;
    }
    this.calls = calls;
    this.serials = serials;
    this.start = 0;
  }
}
