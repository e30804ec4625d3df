import { TrackedEndpoint } from '../../balancer/endpoint.js';
import type { Balancer } from '../../balancer/index.js';
import { Picker, probeBudget, type CallHandle, type CallObserver } from '../../balancer/picker.js';
import { releaseOutcome, type Limiter, type Token } from '../../limit/index.js';
import type { Clock } from '../../util/clock.js';
import type { RetryBudget } from '../../util/retry-budget.js';
import type { SimCall } from './call.js';

/**
 * An endpoint as one simulated router tracks it; `index` is the server it stands for. It is its own
 * pick candidate (no per-endpoint limiter, no breaker: the simulator models neither).
 */
export class SimEndpoint extends TrackedEndpoint {
  readonly limiter = undefined;

  constructor(readonly index: number) {
    super(`server-${index}`, `sim://server-${index}`);
  }

  get ep(): SimEndpoint {
    return this;
  }
}

/** What a router hears from the operator about one server (a routing snapshot's figures). */
export interface TelemetryView {
  atMs: number;
  cpu: Float64Array;
  queueLength: Float64Array;
  errorRate: Float64Array;
  /** The endpoint weights the operator pushes to data planes, when the policy reads them. */
  weight?: Float64Array;
}

/** Sees each call's endpoint as the policy picked it, before the call is counted there. */
export interface PickWatcher {
  onPick?(router: SimRouter, ep: SimEndpoint, c: SimCall, now: number): void;
}

/**
 * One router of the fleet, as the real one keeps a pool (src/router/pool-state.ts): its own endpoints
 * with its own in-flight counts and the start of the oldest open call on each, one balancer instance (the
 * real policy, from the registry) behind the same Picker and call handles as the router's, and
 * optionally its own concurrency limiter. It sees only the calls it placed itself, and the servers' load
 * only as the operator last pushed it (`applyTelemetry`), never the truth.
 *
 * Admission uses `tryAcquire`: a call over the limit is shed at once (RESOURCE_EXHAUSTED in no time)
 * rather than waiting a few milliseconds for a slot.
 */
export class SimRouter {
  readonly endpoints: SimEndpoint[];
  private readonly picker: Picker<SimEndpoint>;
  /** As the router's per pool: probes add at most PROBE_BUDGET_PERCENT of the calls. */
  private readonly probes: RetryBudget;

  constructor(
    readonly index: number,
    servers: number,
    readonly balancer: Balancer,
    readonly limiter: Limiter | undefined,
    clock: Clock,
    watch?: PickWatcher,
  ) {
    this.endpoints = Array.from({ length: servers }, (_, i) => new SimEndpoint(i));
    const onPick = watch?.onPick?.bind(watch);
    const observer: CallObserver<SimEndpoint> | undefined = onPick && {
      // probes too, as the router's observer sees them (src/router/control-link.ts)
      started: (call) => onPick(this, call.target, call.req as SimCall, call.startedAtMs),
      ended: () => undefined,
    };
    this.picker = new Picker(balancer, { clock, ...(observer ? { observer } : {}) });
    this.probes = probeBudget(clock);
  }

  /**
   * A probe's handle (not started) when the policy wants `copy`, a copy of a call just placed on
   * `picked`, sent to another endpoint (Picker.probe), within the probe budget; else undefined. Every
   * method counts as idempotent here (bench/scenarios/README.md). With a limiter, the probe takes a
   * slot only if one is free at sheddable priority (`copy.token`, released by `end`), as the router's
   * endpoint limiters give probes: under overload no probe adds to the load.
   */
  probe(copy: SimCall, picked: SimEndpoint): CallHandle<SimEndpoint> | undefined {
    if (!this.balancer.probeTarget) return undefined;
    this.probes.onRequest();
    let token: Token | undefined;
    const allowance = {
      tryWithdraw: (): boolean => {
        if (this.limiter && !(token = this.limiter.tryAcquire({ priority: 'sheddable' }))) return false;
        if (this.probes.tryWithdraw()) return true;
        token?.release('ignore');
        return false;
      },
    };
    const handle = this.picker.probe(this.endpoints, copy, picked, allowance);
    if (handle) copy.token = token;
    return handle;
  }

  /**
   * Admits and places a call: returns the endpoint chosen, or undefined when the limiter shed it. On
   * success the call is started on the endpoint (its in-flight count and oldest-call start raised), as
   * the router does before forwarding.
   */
  dispatch(c: SimCall, before?: (ep: SimEndpoint) => void): SimEndpoint | undefined {
    if (this.limiter) {
      const token = this.limiter.tryAcquire({ deadlineMs: c.deadlineAt });
      if (!token) return undefined;
      c.token = token;
    }
    const picked = this.picker.pickNow(this.endpoints, c);
    if (picked.type !== 'complete') throw new Error(`simulated pick found no endpoint (${picked.type})`);
    c.call = picked.call;
    before?.(picked.call.target);
    picked.call.start();
    return picked.call.target;
  }

  /**
   * Places another try of a call (a hedge or a retry, try-policy.ts) on an endpoint it has not
   * `tried`, as the router picks among a call's untried candidates; undefined when none is left.
   * `before` sees the endpoint before the try is counted there (as the pick saw it).
   */
  dispatchTry(
    c: SimCall,
    tried: readonly number[],
    before?: (ep: SimEndpoint) => void,
  ): SimEndpoint | undefined {
    const candidates = this.endpoints.filter((e) => !tried.includes(e.index));
    if (candidates.length === 0) return undefined;
    const picked = this.picker.pickNow(candidates, c);
    if (picked.type !== 'complete') return undefined;
    c.call = picked.call;
    before?.(picked.call.target);
    picked.call.start();
    return picked.call.target;
  }

  /**
   * A call's (or probe's) answer or deadline reached the router: its handle ends, the limit hears of it.
   * `censored`: the router cut the try before its answer (CallOutcome.censored).
   */
  end(c: SimCall, code: number, censored = false): void {
    c.clientDone = true;
    const outcome = c.call?.end(code, undefined, censored);
    c.token?.release(releaseOutcome(code), outcome?.latencyMs);
  }

  /** The operator's latest push: load (ORCA-style) and hints for every endpoint, as of `view.atMs`. */
  applyTelemetry(view: TelemetryView): void {
    for (const ep of this.endpoints) {
      const i = ep.index;
      const cpu = view.cpu[i] as number;
      if (ep.load) {
        ep.load.cpu = cpu;
        ep.load.atMs = view.atMs;
      } else ep.load = { cpu, atMs: view.atMs };
      const h = (ep.hints ??= {});
      h.cpu = cpu;
      h.queueLength = view.queueLength[i] as number;
      h.errorRate = view.errorRate[i] as number;
      h.atMs = view.atMs;
      if (view.weight) h.weight = view.weight[i] as number;
    }
  }
}
