import { Type, type Static } from '@sinclair/typebox';
import { registerBalancer } from './registry.js';
import { DEFAULT_FAILURE_PENALTY_MS, decay } from './common.js';
import { P2C, type LoadMetric } from './p2c.js';
import type { CallOutcome, Endpoint } from './types.js';

export const LeastRequestConfig = Type.Object(
  {
    /** τ: how long a failure counts as a call still held (ms). */
    failurePenaltyMs: Type.Number({ minimum: 1, default: DEFAULT_FAILURE_PENALTY_MS }),
  },
  { additionalProperties: false },
);
export type LeastRequestConfig = Static<typeof LeastRequestConfig>;

/**
 * LeastRequest's load: the calls this router has in flight there (Envoy's LEAST_REQUEST, Finagle's
 * least-loaded), picked by P2C (p2c.ts).
 *
 * Failures: a server that fails at once has nothing in flight and would win every comparison
 * (sinkholing). So a failed call is counted as if it still occupied the server for a while:
 *
 *     load = inflight + F,   F ← F · exp(−Δt/τ) + 1 on each failure,   τ = failurePenaltyMs
 *
 * F is the expected number of "virtual calls" still held when each failure holds a slot for an
 * exponentially distributed time of mean τ; by Little's law a server failing at rate λ carries λτ of
 * them, as if each failed call had lasted the penalty (default 1 s, the deadline). F fades with time, so
 * a server that recovers is tried again.
 */
export class LeastRequestLoad implements LoadMetric {
  private readonly tauMs: number;
  /** Per endpoint: decayed failure count and when it was last decayed. Created when picked. */
  private readonly state = new Map<string, { failures: number; atMs: number }>();

  constructor(config: LeastRequestConfig) {
    this.tauMs = config.failurePenaltyMs;
  }

  load(ep: Endpoint, now: number): number {
    const s = this.state.get(ep.id);
    return s && s.failures > 0 ? ep.inflight + s.failures * decay(now - s.atMs, this.tauMs) : ep.inflight;
  }

  onPicked(ep: Endpoint, now: number): void {
    if (!this.state.has(ep.id)) this.state.set(ep.id, { failures: 0, atMs: now });
  }

  onCallEnded(ep: Endpoint, outcome: CallOutcome, now: number): void {
    // a try the router cut (CallOutcome.censored) is no failure of the endpoint's
    if (outcome.ok || outcome.censored) return;
    const s = this.state.get(ep.id);
    if (!s) return; // not picked by us, or removed since
    s.failures = s.failures * decay(now - s.atMs, this.tauMs) + 1;
    s.atMs = now;
  }

  onEndpointRemoved(id: string): void {
    this.state.delete(id);
  }

  /** Its breaker lets it be tried again, or it is reachable again: its failures are set aside. */
  onEndpointReadmitted(id: string): void {
    const s = this.state.get(id);
    if (s) s.failures = 0;
  }
}

registerBalancer(
  'LeastRequest',
  LeastRequestConfig,
  (config, deps) => new P2C('LeastRequest', new LeastRequestLoad(config), deps),
);
