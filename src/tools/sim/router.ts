import type { Balancer, CallOutcome, Endpoint } from '../../balancer/index.js';
import type { Limiter } from '../../limit/index.js';
import { releaseOutcome } from '../../limit/index.js';
import { CallRing, type SimCall } from './call.js';

/** An endpoint as one simulated router tracks it; `index` is the server it stands for. */
export interface SimEndpoint extends Endpoint {
  readonly index: number;
}

/** What a router hears from the operator about one server (DESIGN.md §3: a routing snapshot's figures). */
export interface TelemetryView {
  atMs: number;
  cpu: Float64Array;
  queueLength: Float64Array;
  errorRate: Float64Array;
}

const isDone = (c: SimCall) => c.clientDone;

/** Sees each call's endpoint as the policy picked it, before the call is counted there. */
export interface PickWatcher {
  onPick?(router: SimRouter, ep: SimEndpoint, c: SimCall, now: number): void;
}

/**
 * One router of the fleet, as the real one keeps a pool (src/router/pool-state.ts): its own endpoints
 * with its own in-flight counts and the start of the oldest open call on each, one balancer instance (the
 * real policy, from the registry), and optionally its own concurrency limiter. It sees only the calls it
 * placed itself, and the servers' load only as the operator last pushed it (`applyTelemetry`), never the
 * truth.
 *
 * Admission uses `tryAcquire`: a call over the limit is shed at once (RESOURCE_EXHAUSTED in no time)
 * rather than waiting a few milliseconds for a slot.
 */
export class SimRouter {
  readonly endpoints: SimEndpoint[];
  private readonly open: CallRing[];
  /** Reused for every onCallEnded: policies read it and keep nothing. */
  private readonly outcome: CallOutcome = { ok: true, code: 0, latencyMs: 0, startedAtMs: 0 };

  constructor(
    readonly index: number,
    servers: number,
    readonly balancer: Balancer,
    readonly limiter: Limiter | undefined,
  ) {
    this.endpoints = Array.from({ length: servers }, (_, i) => ({
      id: `server-${i}`,
      address: `sim://server-${i}`,
      index: i,
      inflight: 0,
    }));
    this.open = this.endpoints.map(() => new CallRing());
  }

  /**
   * Admits and places a call: returns the endpoint chosen, or undefined when the limiter shed it. On
   * success the endpoint's in-flight count and oldest-call start are raised, as the router does before
   * forwarding.
   */
  dispatch(c: SimCall, now: number, watch?: PickWatcher): SimEndpoint | undefined {
    if (this.limiter) {
      const token = this.limiter.tryAcquire({ deadlineMs: c.deadlineAt });
      if (!token) return undefined;
      c.token = token;
    }
    const ep = this.balancer.pick(this.endpoints, c) as SimEndpoint;
    watch?.onPick?.(this, ep, c, now);
    c.ep = ep;
    this.open[ep.index]!.push(c);
    ep.inflight++;
    ep.oldestInflightStartMs ??= now;
    this.balancer.onCallStarted?.(ep, c);
    return ep;
  }

  /** The call's answer (or its deadline) reached the router: lower the counts, tell the policy and limit. */
  end(c: SimCall, ok: boolean, code: number, now: number): void {
    c.clientDone = true;
    const ep = c.ep as SimEndpoint;
    ep.inflight--;
    ep.oldestInflightStartMs = this.open[ep.index]!.head(isDone)?.startMs;
    const latencyMs = now - c.startMs;
    const o = this.outcome;
    o.ok = ok;
    o.code = code;
    o.latencyMs = latencyMs;
    o.startedAtMs = c.startMs;
    this.balancer.onCallEnded(ep, c, o);
    c.token?.release(releaseOutcome(code), latencyMs);
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
    }
  }
}
