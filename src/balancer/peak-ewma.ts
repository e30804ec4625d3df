import { Type, type Static } from '@sinclair/typebox';
import { registerBalancer } from './registry.js';
import { DEFAULT_FAILURE_PENALTY_MS, chargedLatencyMs, decay } from './common.js';
import { P2C, type LoadMetric } from './p2c.js';
import type { CallOutcome, Endpoint } from './types.js';

export const PeakEwmaConfig = Type.Object(
  {
    /** τ of the moving average (Finagle's and Linkerd's 10 s). */
    decayMs: Type.Number({ minimum: 1, default: 10_000 }),
    /** Where an endpoint not seen before starts (Linkerd's 30 ms). */
    defaultRttMs: Type.Number({ minimum: 0, default: 30 }),
    /** The least a failed call is charged, so a server that fails fast looks slow, not fast. */
    failurePenaltyMs: Type.Number({ minimum: 0, default: DEFAULT_FAILURE_PENALTY_MS }),
  },
  { additionalProperties: false },
);
export type PeakEwmaConfig = Static<typeof PeakEwmaConfig>;

/**
 * PeakEwma's load, after Finagle's `PeakEwma` load metric and Linkerd's / tower's `PeakEwma`, picked
 * with two random choices as both do (p2c.ts):
 *
 *     load = rtt × (inflight + 1)
 *
 * `rtt` is a peak-sensitive moving average: on a sample r at time t, with w = exp(−(t − stamp)/τ),
 *
 *     rtt = r                       if r > rtt   (a slow response is believed at once)
 *     rtt = rtt · w + r · (1 − w)   otherwise    (good news is believed slowly)
 *
 * and every read is Finagle's `observe(0)`, so an endpoint nobody sends to decays towards zero and gets
 * tried again.
 */
export class PeakEwmaLoad implements LoadMetric {
  private readonly rtt = new Map<string, { ms: number; stampMs: number }>();

  constructor(private readonly config: PeakEwmaConfig) {}

  load(ep: Endpoint, now: number): number {
    return this.estimate(ep.id, now) * (ep.inflight + 1);
  }

  onPicked(ep: Endpoint, now: number): void {
    this.estimate(ep.id, now);
  }

  onCallEnded(ep: Endpoint, outcome: CallOutcome, now: number): void {
    if (!this.rtt.has(ep.id)) return;
    // A try the router cut (CallOutcome.censored) took at least its latency: a peak if above the
    // estimate, else nothing (as a sample below the estimate it would pull it down); never a failure.
    if (outcome.censored) {
      if (outcome.latencyMs > this.estimate(ep.id, now)) this.observe(ep.id, outcome.latencyMs, now);
      return;
    }
    this.observe(ep.id, chargedLatencyMs(outcome.ok, outcome.latencyMs, this.config.failurePenaltyMs), now);
  }

  onEndpointRemoved(id: string): void {
    this.rtt.delete(id);
  }

  /**
   * Its breaker lets it be tried again: the peaks the failures left (each charged failurePenaltyMs)
   * are set aside. It starts again at the median of the other endpoints' estimates, so it takes an
   * ordinary share of calls (its breaker bounds the trials) and its own samples move it from there (at
   * defaultRttMs it would wait for the decay in a pool faster than that).
   */
  onEndpointReadmitted(id: string, now: number): void {
    const others = [...this.rtt.keys()].filter((k) => k !== id).map((k) => this.estimate(k, now));
    if (others.length === 0) {
      this.rtt.delete(id);
      return;
    }
    others.sort((a, b) => a - b);
    const mid = others.length >> 1;
    const median =
      others.length % 2
        ? (others[mid] as number)
        : ((others[mid - 1] as number) + (others[mid] as number)) / 2;
    this.rtt.set(id, { ms: median, stampMs: now });
  }

  /** The current RTT estimate in ms (Finagle's `get`: observe(0) then read). */
  estimate(id: string, now: number): number {
    return this.observe(id, 0, now);
  }

  private observe(id: string, sampleMs: number, now: number): number {
    let s = this.rtt.get(id);
    if (!s) {
      s = { ms: this.config.defaultRttMs, stampMs: now };
      this.rtt.set(id, s);
    }
    if (sampleMs > s.ms) s.ms = sampleMs;
    else {
      const w = decay(now - s.stampMs, this.config.decayMs);
      s.ms = s.ms * w + sampleMs * (1 - w);
    }
    s.stampMs = Math.max(s.stampMs, now);
    return s.ms;
  }
}

registerBalancer(
  'PeakEwma',
  PeakEwmaConfig,
  (config, deps) => new P2C('PeakEwma', new PeakEwmaLoad(config), deps),
);
