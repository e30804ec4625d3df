import { isServerFault } from '../grpc/status.js';
import { releaseOutcome, type Limiter, type Priority, type Token } from '../limit/index.js';
import type { Clock } from '../util/clock.js';
import { RetryBudget } from '../util/retry-budget.js';
import { isSibylError } from '../util/errors.js';
import type { OpenCall, TrackedEndpoint } from './endpoint.js';
import type { Balancer, CallOutcome, Endpoint, LoadReport, PickRequest } from './types.js';

/**
 * Picking an endpoint for one call, and the call's lifecycle there, in one place for every data path:
 * the router (src/router/pipeline.ts), the simulator (src/tools/sim/router.ts) and the in-process
 * client policy. After tower's `Balance` with its completion handle (a call's load is counted from the
 * pick until the handle drops) and grpc-js's `PickResult` union.
 *
 * pick → limit → breaker: the balancer picks among the candidates; the chosen endpoint's concurrency
 * limiter (when the pool has one) must grant a slot for the call's priority, and the gate (the pool's
 * circuit breakers) admit it. An endpoint at its limit is set aside and the balancer picks again among
 * the rest, so a full endpoint costs a second pick, not a refusal. Only when every candidate is full
 * may the call wait, on the endpoint the balancer prefers among the full ones, for at most its
 * limiter's short wait and never past the call's deadline; the limiter's queue serves critical calls
 * first and sheds sheddable ones first.
 *
 * The handle (CallHandle) does all the bookkeeping of the call exactly once: `start()` when the call is
 * sent (in-flight counts, the balancer, the observer), `end(code)` when it is over (the endpoint's
 * counts, the balancer, the gate, the limiter's slot, the observer). A handle ended before it started
 * gives its slot and breaker trial back without telling anyone of a call.
 *
 * Probes (`probe`): after a pick, the balancer may name another endpoint it wants measured with a copy
 * of the call (Balancer.probeTarget). The probe's handle does the same bookkeeping (the endpoint's counts,
 * the balancer learns its latency, the breaker sees its failures, the limiter its slot), but it is
 * marked (`probe`), takes a limiter slot only if one is free at 'sheddable' priority, and is admitted
 * only by a Closed breaker: a probe never waits, never displaces a client's call, never uses a trial.
 */
export interface Choosable {
  readonly ep: TrackedEndpoint;
  /** The endpoint's concurrency limiter; undefined when its pool has no limit. */
  readonly limiter: Limiter | undefined;
}

/** The circuit breakers' side of a pick. */
export interface CallGate {
  /** The call goes to `id`: takes a half-open trial slot; false if it may not after all. */
  admit(id: string): boolean;
  onCallEnded(id: string, outcome: CallOutcome): void;
  /**
   * A probe may go to `id`: only while its breaker is Closed, and it takes no half-open trial slot
   * (a trial decides whether clients' calls go there again; a probe's answer decides nothing for a
   * client). Absent: the gate admits no probes.
   */
  admitProbe?(id: string): boolean;
  /** A probe admitted by admitProbe ended (it took no slot; its verdict counts while still Closed). */
  onProbeEnded?(id: string, outcome: CallOutcome): void;
}

/** What caps the probes a data path sends (probeBudget). */
export interface ProbeAllowance {
  tryWithdraw(): boolean;
}

/** Probes add at most this share of a pool's calls, in percent (as hedging.maxPercent caps hedges). */
const PROBE_BUDGET_PERCENT = 5;

/**
 * The probe budget of one pool on one router (or simulated router): every call that could carry a
 * probe deposits (onRequest), every probe withdraws; a reserve of one a second lets a quiet pool probe.
 */
export function probeBudget(clock: Clock): RetryBudget {
  return new RetryBudget(PROBE_BUDGET_PERCENT, clock, { minPerSecond: 1, maxBalance: 10 });
}

/** Sees every call start and end: `started` returns what it wants back at the end. */
export interface CallObserver<C extends Choosable> {
  /** Before the call is counted on its endpoint (as the balancer saw it when it picked). */
  started(call: CallHandle<C>): unknown;
  ended(call: CallHandle<C>, context: unknown, outcome: CallOutcome): void;
}

export interface PickerDeps<C extends Choosable> {
  clock: Clock;
  gate?: CallGate;
  observer?: CallObserver<C>;
}

export type PickResult<C extends Choosable> =
  | { readonly type: 'complete'; readonly call: CallHandle<C> }
  /** pickNow only: every candidate that could take the call is at its concurrency limit. */
  | { readonly type: 'queue'; readonly full: C[] }
  /** pick only: the wait for a slot ended without one (the caller sheds: RESOURCE_EXHAUSTED). */
  | { readonly type: 'drop'; readonly reason: string }
  /** No candidate can take the call for other reasons (none left, breakers). */
  | { readonly type: 'unavailable' };

export class Picker<C extends Choosable> {
  constructor(
    readonly balancer: Balancer,
    private readonly deps: PickerDeps<C>,
  ) {}

  /** An endpoint with a slot now; never waits. `candidates` is not changed. */
  pickNow(candidates: readonly C[], req: PickRequest, priority: Priority = 'default'): PickResult<C> {
    let cands = candidates;
    let eps = endpointsOf(cands);
    let full: C[] | undefined;
    while (cands.length > 0) {
      const i = indexOfPick(eps, this.balancer.pick(eps, req));
      const c = cands[i] as C;
      let token: Token | undefined;
      if (c.limiter) {
        token = c.limiter.tryAcquire({ priority });
        if (!token) (full ??= []).push(c);
      }
      if ((!c.limiter || token) && (this.deps.gate?.admit(c.ep.id) ?? true)) {
        return { type: 'complete', call: new CallHandle(c, token, this.balancer, req, this.deps) };
      }
      token?.release('ignore');
      // set aside, and the balancer picks again among the rest
      cands = cands.filter((_, k) => k !== i);
      eps = endpointsOf(cands);
    }
    return full ? { type: 'queue', full } : { type: 'unavailable' };
  }

  /**
   * A probe's handle (not started) when the balancer wants an endpoint of `candidates` other than
   * `picked` measured with a copy of `req`, and `allowance` (a probe budget), the endpoint's limiter
   * (a free slot, sheddable priority) and the gate (Closed breaker) all let it go; else undefined.
   * `candidates` are those of the pick.
   */
  probe(
    candidates: readonly C[],
    req: PickRequest,
    picked: C,
    allowance?: ProbeAllowance,
  ): CallHandle<C> | undefined {
    if (!this.balancer.probeTarget || candidates.length < 2) return undefined;
    const eps = endpointsOf(candidates);
    const target = this.balancer.probeTarget(eps, req, picked.ep);
    const i = target === undefined ? -1 : eps.indexOf(target);
    const c = candidates[i];
    if (c === undefined || c === picked) return undefined;
    const token = c.limiter?.tryAcquire({ priority: 'sheddable' });
    if (c.limiter && !token) return undefined;
    // the gate's probe admission takes nothing; the budget is spent last, on a probe that goes
    const admitted = !this.deps.gate || (this.deps.gate.admitProbe?.(c.ep.id) ?? false);
    if (admitted && (allowance?.tryWithdraw() ?? true)) {
      return new CallHandle(c, token, this.balancer, req, this.deps, true);
    }
    token?.release('ignore');
    return undefined;
  }

  /**
   * An endpoint with a slot, waiting briefly when every candidate is at its limit. `deadlineMs` is
   * absolute on the limiters' clock (Infinity when none).
   */
  pick(
    candidates: readonly C[],
    req: PickRequest,
    priority: Priority,
    deadlineMs: number,
  ): PickResult<C> | Promise<PickResult<C>> {
    const now = this.pickNow(candidates, req, priority);
    return now.type === 'queue' ? this.waitForSlot(now.full, req, priority, deadlineMs) : now;
  }

  /** Every one of `full` (non-empty) is at its limit: wait on the one the balancer prefers. */
  private async waitForSlot(
    full: C[],
    req: PickRequest,
    priority: Priority,
    deadlineMs: number,
  ): Promise<PickResult<C>> {
    const eps = full.map((c) => c.ep);
    const c = full[indexOfPick(eps, this.balancer.pick(eps, req))] as C;
    let token: Token;
    try {
      token = await (c.limiter as Limiter).acquire({ priority, deadlineMs });
    } catch (e) {
      if (!isSibylError(e, 'ERR_SHED')) throw e;
      const reason = `every endpoint is at its concurrency limit; ${c.ep.address}: ${e.message}`;
      return { type: 'drop', reason };
    }
    if (this.deps.gate?.admit(c.ep.id) ?? true) {
      return { type: 'complete', call: new CallHandle(c, token, this.balancer, req, this.deps) };
    }
    token.release('ignore');
    return { type: 'unavailable' };
  }
}

/** The balancer's view of the candidates: themselves when they are their own endpoint (the simulator's). */
function endpointsOf<C extends Choosable>(cands: readonly C[]): readonly Endpoint[] {
  const first = cands[0];
  return first !== undefined && (first.ep as unknown) === first
    ? (cands as unknown as readonly Endpoint[])
    : cands.map((c) => c.ep);
}

function indexOfPick(eps: readonly Endpoint[], picked: Endpoint): number {
  const i = eps.indexOf(picked);
  return i < 0 ? 0 : i;
}

/** One call on one endpoint, from the pick to its end. See Picker. */
export class CallHandle<C extends Choosable> implements OpenCall {
  startedAtMs = Number.NaN;
  ended = false;
  private started = false;
  private context: unknown;

  constructor(
    readonly target: C,
    private readonly token: Token | undefined,
    /** The balancer that picked it: told of the end even if the pool has a new one by then. */
    readonly balancer: Balancer,
    readonly req: PickRequest,
    private readonly deps: PickerDeps<C>,
    /** A probe (Picker.probe): a copy of a call whose answer no client waits on. */
    readonly probe = false,
  ) {}

  get endpoint(): TrackedEndpoint {
    return this.target.ep;
  }

  /** The call is sent now. */
  start(): void {
    if (this.started || this.ended) return;
    this.started = true;
    this.startedAtMs = this.deps.clock.now();
    this.context = this.deps.observer?.started(this);
    this.target.ep.callStarted(this);
    this.balancer.onCallStarted?.(this.target.ep, this.req);
  }

  /**
   * The call ended with gRPC status `code` (only the first end counts); returns its outcome. `load` is
   * the load report its response carried (ORCA): the endpoint's figure before anyone is told.
   * `censored`: the router cut it before its answer (a lost hedge race, its per-try deadline, the
   * client gone): its latency is a lower bound, not a sample (CallOutcome.censored).
   */
  end(code: number, load?: LoadReport, censored = false): CallOutcome | undefined {
    if (this.ended) return undefined;
    this.ended = true;
    const ep = this.target.ep;
    if (load) ep.load = load;
    const now = this.deps.clock.now();
    if (!this.started) {
      // Never sent: the limiter's slot and the breaker's trial go back; no call to speak of.
      this.token?.release('ignore');
      if (!this.probe) this.deps.gate?.onCallEnded(ep.id, { ok: true, code, latencyMs: 0, startedAtMs: now });
      return undefined;
    }
    const outcome: CallOutcome = {
      ok: !isServerFault(code),
      code,
      latencyMs: now - this.startedAtMs,
      startedAtMs: this.startedAtMs,
      ...(censored ? { censored } : {}),
    };
    ep.callEnded();
    this.balancer.onCallEnded(ep, this.req, outcome);
    if (this.probe) this.deps.gate?.onProbeEnded?.(ep.id, outcome);
    else this.deps.gate?.onCallEnded(ep.id, outcome);
    this.token?.release(releaseOutcome(code), outcome.latencyMs);
    this.deps.observer?.ended(this, this.context, outcome);
    return outcome;
  }
}
