import { registerBalancer } from './registry.js';
import {
  DEFAULT_FAILURE_PENALTY_MS,
  chargedLatencyMs,
  decay,
  numberOption,
  otherIndex,
  randomIndex,
} from './common.js';
import type { Balancer, BalancerDeps, CallOutcome, Endpoint, PickRequest } from './types.js';

/**
 * PeakEwma, after Finagle's `PeakEwma` load metric and Linkerd's / tower's `PeakEwma` balancer, picked
 * with two random choices (as both do):
 *
 *     cost = rtt × (inflight + 1)
 *
 * `rtt` is a peak-sensitive moving average: on a sample r at time t, with w = exp(−(t − stamp)/τ),
 *
 *     rtt = r                       if r > rtt   (a slow response is believed at once)
 *     rtt = rtt · w + r · (1 − w)   otherwise    (good news is believed slowly)
 *
 * and every read is Finagle's `observe(0)`, so an endpoint nobody sends to decays towards zero and gets
 * tried again. τ = 10 s (Finagle's and Linkerd's default). An endpoint not seen before starts at
 * `defaultRttMs` (Linkerd's 30 ms). A failed call is charged at least `failurePenaltyMs`, so a server
 * that fails fast looks slow, not fast.
 *
 * Options: `decayMs` (τ, default 10000), `defaultRttMs` (default 30), `failurePenaltyMs` (default 1000).
 */
export class PeakEwma implements Balancer {
  readonly name = 'PeakEwma';
  private readonly tauMs: number;
  private readonly defaultRttMs: number;
  private readonly penaltyMs: number;
  private readonly rtt = new Map<string, { ms: number; stampMs: number }>();

  constructor(
    private readonly deps: BalancerDeps,
    options?: Record<string, unknown>,
  ) {
    this.tauMs = numberOption(options, 'decayMs', 10_000, 1);
    this.defaultRttMs = numberOption(options, 'defaultRttMs', 30, 0);
    this.penaltyMs = numberOption(options, 'failurePenaltyMs', DEFAULT_FAILURE_PENALTY_MS, 0);
  }

  pick(candidates: readonly Endpoint[]): Endpoint {
    const n = candidates.length;
    if (n === 1) {
      const only = candidates[0] as Endpoint;
      this.estimate(only.id);
      return only;
    }
    const i = randomIndex(this.deps.random, n);
    const a = candidates[i] as Endpoint;
    const b = candidates[otherIndex(this.deps.random, n, i)] as Endpoint;
    const ca = this.cost(a);
    const cb = this.cost(b);
    return ca < cb ? a : cb < ca ? b : this.deps.random() < 0.5 ? a : b;
  }

  onCallEnded(ep: Endpoint, _req: PickRequest, outcome: CallOutcome): void {
    if (this.rtt.has(ep.id))
      this.observe(ep.id, chargedLatencyMs(outcome.ok, outcome.latencyMs, this.penaltyMs));
  }

  onEndpointRemoved(id: string): void {
    this.rtt.delete(id);
  }

  cost(ep: Endpoint): number {
    return this.estimate(ep.id) * (ep.inflight + 1);
  }

  /** The current RTT estimate in ms (Finagle's `get`: observe(0) then read). */
  estimate(id: string): number {
    return this.observe(id, 0);
  }

  private observe(id: string, sampleMs: number): number {
    const now = this.deps.clock.now();
    let s = this.rtt.get(id);
    if (!s) {
      s = { ms: this.defaultRttMs, stampMs: now };
      this.rtt.set(id, s);
    }
    if (sampleMs > s.ms) s.ms = sampleMs;
    else {
      const w = decay(now - s.stampMs, this.tauMs);
      s.ms = s.ms * w + sampleMs * (1 - w);
    }
    s.stampMs = Math.max(s.stampMs, now);
    return s.ms;
  }
}

registerBalancer('PeakEwma', (deps, options) => new PeakEwma(deps, options));
