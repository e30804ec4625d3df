import { registerBalancer } from './registry.js';
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_FAILURE_PENALTY_MS, chargedLatencyMs, randomIndex } from './common.js';
import type { Random } from '../util/clock.js';
import type { Balancer, BalancerDeps, CallOutcome, Endpoint, PickRequest } from './types.js';

/**
 * Prequal (Wydrowski et al., "Load is not what you should balance: Introducing Prequal", NSDI 2024).
 *
 * The paper's client keeps a pool of at most 16 probe replies, each a server's (requests in flight,
 * estimated latency), sends about 3 probes per query, drops probes older than about a second, and picks
 * with the hot-cold lexicographic rule: a probe is hot when its RIF is above the 0.84 quantile of the
 * pool's RIFs; take the cold probe with the lowest latency, or when every probe is hot the one with the
 * lowest RIF. A used probe's RIF is raised by one, so a burst does not all land on it.
 *
 * Adaptation to sibyl: the router does not send probe RPCs. A "probe" is taken at pick time from what
 * this router already knows about a randomly chosen candidate:
 * - RIF = this router's own calls in flight there (exact and current, unlike any lagged telemetry);
 * - latency = an estimate that tracks the load the probe sees. Per endpoint we keep EWMAs of the latency
 *   of calls (L̄) and of the RIF they ran alongside (R̄, sampled at completion), and scale by Little's law
 *   under processor sharing: latency(r) = L̄ · (r + 1) / (R̄ + 1). The age of the oldest unanswered call
 *   is a floor (a stalled server looks slow at once). Failed calls count as `failurePenaltyMs`. An
 *   endpoint with no sample newer than `latencyWindowMs` gets the pool-wide estimate instead, so a server
 *   avoided for failing is retried now and then.
 * Probes therefore cost nothing, but the pool keeps Prequal's sampling: which servers are compared, and
 * for how long a reading is trusted.
 *
 * Config (PrequalConfig): the paper's figures by default.
 */
export const PrequalConfig = Type.Object(
  {
    maxProbes: Type.Integer({ minimum: 1, maximum: 64, default: 16 }),
    probesPerCall: Type.Integer({ minimum: 1, maximum: 64, default: 3 }),
    probeTtlMs: Type.Number({ minimum: 0, default: 1000 }),
    hotQuantile: Type.Number({ minimum: 0, maximum: 1, default: 0.84 }),
    latencyWindowMs: Type.Number({ minimum: 1, default: 5000 }),
    defaultLatencyMs: Type.Number({ minimum: 0, default: 10 }),
    failurePenaltyMs: Type.Number({ minimum: 0, default: DEFAULT_FAILURE_PENALTY_MS }),
  },
  { additionalProperties: false },
);
export type PrequalConfig = Static<typeof PrequalConfig>;

interface Probe {
  id: string;
  index: number; // where it stood in the candidates when probed: usually still there, saving a search
  rif: number;
  latencyMs: number;
  atMs: number;
}

interface LoadStats {
  latencyMs: number; // EWMA of call latency (failures charged the penalty)
  rif: number; // EWMA of RIF alongside those calls
  atMs: number; // last sample; -Infinity when none yet
}

const ALPHA = 0.2; // EWMA weight of a new sample

/**
 * The hot-cold lexicographic rule on probes 0..m−1: a probe is hot when its RIF is above `threshold`.
 * Returns the cold probe with the lowest latency, else (all hot) the probe with the lowest RIF; ties at
 * random.
 */
export function hotColdSelect(
  rifs: ArrayLike<number>,
  latencies: ArrayLike<number>,
  m: number,
  threshold: number,
  random: Random,
): number {
  let best = -1;
  let bestLat = Infinity;
  let ties = 0;
  for (let i = 0; i < m; i++) {
    if ((rifs[i] as number) > threshold) continue;
    const lat = latencies[i] as number;
    if (lat < bestLat) {
      best = i;
      bestLat = lat;
      ties = 1;
    } else if (lat === bestLat && random() * ++ties < 1) best = i;
  }
  if (best >= 0) return best;
  let bestRif = Infinity;
  for (let i = 0; i < m; i++) {
    const r = rifs[i] as number;
    if (r < bestRif) {
      best = i;
      bestRif = r;
      ties = 1;
    } else if (r === bestRif && random() * ++ties < 1) best = i;
  }
  return best;
}

const sorted = new Float64Array(64);
/**
 * The q-quantile of values 0..m−1 (m ≤ 64), interpolating linearly between order statistics. On the
 * pool itself the least-loaded probe is never hot; the all-hot branch of the rule is for a threshold
 * taken from elsewhere (the paper estimates the RIF distribution from recent probes).
 */
export function rifQuantile(values: ArrayLike<number>, m: number, q: number): number {
  for (let i = 0; i < m; i++) {
    const v = values[i] as number;
    let j = i - 1;
    while (j >= 0 && (sorted[j] as number) > v) sorted[j + 1] = sorted[j--] as number;
    sorted[j + 1] = v;
  }
  const pos = (m - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(m - 1, lo + 1);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

export class Prequal implements Balancer {
  readonly name = 'Prequal';
  private readonly maxProbes: number;
  private readonly probesPerCall: number;
  private readonly ttlMs: number;
  private readonly hotQuantile: number;
  private readonly windowMs: number;
  private readonly penaltyMs: number;
  private readonly pool: Probe[] = [];
  private readonly stats = new Map<string, LoadStats>();
  private readonly typical: LoadStats;
  private readonly rifs: Float64Array;
  private readonly lats: Float64Array;

  constructor(
    config: PrequalConfig,
    private readonly deps: BalancerDeps,
  ) {
    this.maxProbes = config.maxProbes;
    this.probesPerCall = config.probesPerCall;
    this.ttlMs = config.probeTtlMs;
    this.hotQuantile = config.hotQuantile;
    this.windowMs = config.latencyWindowMs;
    this.penaltyMs = config.failurePenaltyMs;
    this.typical = { latencyMs: config.defaultLatencyMs, rif: 0, atMs: -Infinity };
    this.rifs = new Float64Array(this.maxProbes);
    this.lats = new Float64Array(this.maxProbes);
  }

  pick(candidates: readonly Endpoint[]): Endpoint {
    const now = this.deps.clock.now();
    this.expire(now);
    const k = Math.min(this.probesPerCall, candidates.length);
    for (let i = 0; i < k; i++) {
      const at = randomIndex(this.deps.random, candidates.length);
      this.probe(candidates[at]!, at, now);
    }
    for (;;) {
      const m = this.pool.length;
      if (m === 0) return this.track(candidates[randomIndex(this.deps.random, candidates.length)]!);
      for (let i = 0; i < m; i++) {
        this.rifs[i] = this.pool[i]!.rif;
        this.lats[i] = this.pool[i]!.latencyMs;
      }
      const threshold = rifQuantile(this.rifs, m, this.hotQuantile);
      const idx = hotColdSelect(this.rifs, this.lats, m, threshold, this.deps.random);
      const probe = this.pool[idx]!;
      const at = candidates[probe.index];
      const ep = at?.id === probe.id ? at : candidates.find((c) => c.id === probe.id);
      if (ep) {
        probe.rif += 1; // our own call now runs there too
        return this.track(ep);
      }
      this.pool.splice(idx, 1); // no longer a candidate (breaker open, removed)
    }
  }

  onCallEnded(ep: Endpoint, _req: PickRequest, outcome: CallOutcome): void {
    const s = this.stats.get(ep.id);
    if (!s) return;
    const now = this.deps.clock.now();
    // a try the router cut (CallOutcome.censored) took at least its latency: a sample only when that
    // is above the estimate (below it, it would pull it down), and never a failure
    if (outcome.censored && !(outcome.latencyMs > s.latencyMs && now - s.atMs <= this.windowMs)) return;
    const lat = outcome.censored
      ? outcome.latencyMs
      : chargedLatencyMs(outcome.ok, outcome.latencyMs, this.penaltyMs);
    for (const t of [s, this.typical]) {
      if (now - t.atMs > this.windowMs) {
        t.latencyMs = lat; // the old figures are stale: start afresh
        t.rif = ep.inflight;
      } else {
        t.latencyMs += ALPHA * (lat - t.latencyMs);
        t.rif += ALPHA * (ep.inflight - t.rif);
      }
      t.atMs = now;
    }
  }

  /** Probes held now (after expiry at the last pick). */
  get poolSize(): number {
    return this.pool.length;
  }

  onEndpointRemoved(id: string): void {
    this.stats.delete(id);
    for (let i = this.pool.length - 1; i >= 0; i--) if (this.pool[i]!.id === id) this.pool.splice(i, 1);
  }

  /** Latency this router expects for a call sent to `ep` while `rif` of its own calls run there. */
  estimateLatencyMs(ep: Endpoint, rif: number, now = this.deps.clock.now()): number {
    const own = this.stats.get(ep.id);
    const s = own && now - own.atMs <= this.windowMs ? own : this.typical;
    const est = (s.latencyMs * (rif + 1)) / (s.rif + 1);
    const oldest = ep.oldestInflightStartMs;
    return oldest === undefined ? est : Math.max(est, now - oldest);
  }

  private probe(ep: Endpoint, index: number, now: number): void {
    const reading = {
      id: ep.id,
      index,
      rif: ep.inflight,
      latencyMs: this.estimateLatencyMs(ep, ep.inflight, now),
      atMs: now,
    };
    let oldest = 0;
    for (let i = 0; i < this.pool.length; i++) {
      const p = this.pool[i]!;
      // A newer reading of the same server replaces the old one. Matching on the position first spares
      // string comparisons; after the candidate list is reordered a duplicate may live out its second.
      if (p.index === index && p.id === ep.id) {
        this.pool[i] = reading;
        return;
      }
      if (this.pool[i]!.atMs < this.pool[oldest]!.atMs) oldest = i;
    }
    if (this.pool.length < this.maxProbes) this.pool.push(reading);
    else this.pool[oldest] = reading;
  }

  private expire(now: number): void {
    let w = 0;
    for (const p of this.pool) if (now - p.atMs <= this.ttlMs) this.pool[w++] = p;
    this.pool.length = w;
  }

  private track(ep: Endpoint): Endpoint {
    if (!this.stats.has(ep.id)) this.stats.set(ep.id, { latencyMs: 0, rif: 0, atMs: -Infinity });
    return ep;
  }
}

registerBalancer('Prequal', PrequalConfig, (config, deps) => new Prequal(config, deps));
