import type { Balancer, BalancerDeps, Endpoint, PickRequest } from '../../balancer/index.js';
import { leastCost } from '../../balancer/common.js';
import type { SimCall } from './call.js';
import type { SimEndpoint } from './router.js';
import type { SimServer } from './server.js';

const EXACT_MAX_SLOTS = 256;
const EXACT_MAX_STEPS = 256;

/**
 * The reference no router can be: it knows every server's true state (the work left on each running
 * call, every queued call's work and deadline, its speed, slowdown, pause and error rate) and this
 * call's own work, and sends the call where it is expected to complete first:
 *
 *     cost = (1 − e) · (pauseLeft + wait + work / rate) + e · deadlineMs
 *
 * where `wait` is when a slot frees for it: the server's slots are played forward through the FIFO
 * queue (calls whose deadline passes before their turn are dropped, as the server will drop them), or,
 * for very long queues, the fluid estimate Σ work left / (rate · slots), counting every queued call. `e` is the server's current
 * failure probability: a failure costs the deadline. Greedy per call, so not a bound on every schedule,
 * but a mark of how much knowing the truth is worth. Lives in the simulator only (it reads the servers).
 */
export class Oracle implements Balancer {
  readonly name = 'Oracle';
  private readonly slots = new Float64Array(EXACT_MAX_SLOTS);

  constructor(
    private readonly deps: BalancerDeps,
    private readonly servers: readonly SimServer[],
    private readonly deadlineMs: number,
  ) {}

  pick(candidates: readonly Endpoint[], req: PickRequest): Endpoint {
    const c = req as SimCall;
    const now = this.deps.clock.now();
    return leastCost(
      candidates,
      (ep) => this.expectedCost((ep as SimEndpoint).index, c, now),
      this.deps.random,
    );
  }

  onCallEnded(): void {}

  /** Expected cost (ms) of sending `c` to server `index` now. */
  expectedCost(index: number, c: SimCall, now: number): number {
    const s = this.servers[index] as SimServer;
    const e = s.errorRateAt(now);
    if (e >= 1) return this.deadlineMs;
    const pause = s.pauseLeft(now);
    const rate = s.rate > 0 ? s.rate : s.rateAt(now + pause);
    const t = pause + this.waitMs(s, now, pause, rate) + s.workFor(c, now) / rate;
    return (1 - e) * t + e * this.deadlineMs;
  }

  /** How long (ms, after any pause) until a slot is free for a call arriving now. */
  private waitMs(s: SimServer, now: number, pause: number, rate: number): number {
    const conc = s.concurrency;
    const queued = s.queue.length;
    if (s.nRunning < conc && queued === 0) return 0;
    if (conc <= EXACT_MAX_SLOTS && conc * (queued + 1) <= EXACT_MAX_STEPS) {
      const free = this.slots;
      for (let i = 0; i < conc; i++) {
        const r = i < s.nRunning ? (s.running[i] as SimCall) : undefined;
        free[i] = r ? Math.max(0, r.remaining - (now - r.since) * s.rate) / rate : 0;
      }
      for (let k = 0; k < queued; k++) {
        const q = s.queue.at(k);
        if (!q || q.clientDone) continue;
        let m = 0;
        for (let i = 1; i < conc; i++) if ((free[i] as number) < (free[m] as number)) m = i;
        if (now + pause + (free[m] as number) >= q.deadlineAt) continue; // dropped at its turn
        free[m] = (free[m] as number) + s.workFor(q, now) / rate;
      }
      let w = Infinity;
      for (let i = 0; i < conc; i++) w = Math.min(w, free[i] as number);
      return w;
    }
    let work = 0;
    for (let i = 0; i < s.nRunning; i++) {
      const r = s.running[i] as SimCall;
      work += Math.max(0, r.remaining - (now - r.since) * s.rate);
    }
    return (work + Math.max(0, s.queuedWork)) / (rate * conc);
  }
}
