import { registerBalancer } from './registry.js';
import { DEFAULT_FAILURE_PENALTY_MS, decay, numberOption, randomIndex } from './common.js';
import { SibylError } from '../util/errors.js';
import { LatencyBaseline } from './latency-baseline.js';
import type { Balancer, BalancerDeps, CallOutcome, Endpoint, PickRequest } from './types.js';

/**
 * Predictive (DESIGN.md §5): send each call where its predicted latency is lowest.
 *
 * score = (1 − e) · max(L, age + S) + e · failurePenaltyMs
 *
 * where L is the predicted latency of this request on the endpoint (from `options.predict`, the learned
 * model, when it answers; else the heuristic below), S the predicted service time, `age` how long the
 * oldest call this router has open there has been waiting (a stalled server is caught at once, before
 * any telemetry), and e the expected failure rate: a failure costs the deadline, so a server that fails
 * fast is expensive, never cheap.
 *
 * Heuristic, from the signals that proved strong in a prototype:
 *   b = this router's latency for this method and payload on a typical endpoint (an online least-squares
 *       fit of latency on payload KiB per method, exponentially decayed, pooled over endpoints)
 *   S = (Σ ratio · b + k · prior) / (n + k)   — the endpoint's own recent latency/b ratios (decayed sum
 *       and count n), shrunk towards a prior with weight k. The prior is the operator's predicted
 *       latency when fresh, blended by freshness f = exp(−hintAge/τh) with b · (1 + stalenessPenalty):
 *       an endpoint known only by old telemetry is charged for the uncertainty. No hint: prior = b.
 *   q = inflight + f · max(0, queueLength − inflight)   — own calls in flight, raised towards the
 *       operator's lagged queue length only as far as that figure is fresh
 *   L = S · (1 + q) · (1 + cpuWeight · max(0, cpu − 0.8) / 0.2)   — ORCA CPU matters only near
 *       saturation; lagged CPU alone misleads when every router reacts to the same stale figure.
 *   e = (failures + f · hintErrorRate) / (calls + 1)   — own decayed counts, shrunk towards the fleet's
 *       error rate while that is fresh; as the counts decay, an avoided server is tried again.
 *
 * Whole pool scored when it has at most `scoreAllMax` (16) endpoints — on mixed pools scoring every
 * server closes far more of the gap to an oracle than scoring a few — else `sampleSize` (4) distinct ones
 * at random (power of d choices, Mitzenmacher). Ties are broken at random, and with probability
 * `exploration` (0.05) a uniformly random candidate is taken, so estimates of avoided servers stay current
 * and routers sharing the same stale view do not herd.
 *
 * Options: exploration, predict, failurePenaltyMs (1000), memoryMs (decay of own figures, 5000),
 * hintTauMs (10000, the telemetry interval), stalenessPenalty (0.5), priorWeight (2), cpuWeight (0.5),
 * defaultLatencyMs (10), scoreAllMax (16), sampleSize (4).
 */

/**
 * What a model gets to predict from: one endpoint and one request, as this router sees them now. The
 * object is reused between calls; copy what you keep. Absent figures are NaN (ages: Infinity).
 */
export interface PredictiveFeatures {
  /** Expected latency of this request (method, payload) on a typical endpoint of the pool, ms. */
  baselineMs: number;
  payloadKiB: number;
  /** The endpoint's recent latency over baselineMs (own successful calls, decayed); NaN when none. */
  latencyRatio: number;
  /** Decayed count of own successful calls behind latencyRatio. */
  samples: number;
  /** This router's calls in flight there, and the age of the oldest (0 when none), ms. */
  inflight: number;
  oldestInflightAgeMs: number;
  /** Own decayed failure rate, shrunk towards the fleet-wide rate from the operator. */
  errorRate: number;
  /** Operator's figures (hints) and their age; freshness = exp(−age/τh), 0 without hints. */
  hintLatencyMs: number;
  hintAgeMs: number;
  hintFreshness: number;
  queueLength: number;
  /** ORCA cpu_utilization, else the operator's cpu figure, times its freshness (stale fades to 0). */
  cpu: number;
  memory: number;
}

/** A learned model's prediction in ms, or undefined to use the heuristic. */
export type PredictFn = (ep: Endpoint, req: PickRequest, features: PredictiveFeatures) => number | undefined;

interface OwnStats {
  ratioSum: number; // Σ latency / baseline over successful calls (decayed)
  ratioN: number;
  ok: number;
  failed: number;
  atMs: number;
}

const MAX_METHODS = 512;

export class Predictive implements Balancer {
  readonly name = 'Predictive';
  private readonly exploration: number;
  private readonly predict: PredictFn | undefined;
  private readonly penaltyMs: number;
  private readonly memoryMs: number;
  private readonly hintTauMs: number;
  private readonly stalenessPenalty: number;
  private readonly priorWeight: number;
  private readonly cpuWeight: number;
  private readonly defaultLatencyMs: number;
  private readonly scoreAllMax: number;
  private readonly sampleSize: number;
  private readonly own = new Map<string, OwnStats>();
  private readonly methods = new Map<string, LatencyBaseline>();
  private readonly all: LatencyBaseline;
  private readonly f: PredictiveFeatures = {
    baselineMs: 0,
    payloadKiB: 0,
    latencyRatio: NaN,
    samples: 0,
    inflight: 0,
    oldestInflightAgeMs: 0,
    errorRate: 0,
    hintLatencyMs: NaN,
    hintAgeMs: Infinity,
    hintFreshness: 0,
    queueLength: NaN,
    cpu: NaN,
    memory: NaN,
  };
  private readonly picked = new Int32Array(64);

  constructor(
    private readonly deps: BalancerDeps,
    options?: Record<string, unknown>,
  ) {
    this.exploration = numberOption(options, 'exploration', 0.05, 0, 1);
    const predict = options?.predict;
    if (predict !== undefined && typeof predict !== 'function') {
      throw new SibylError('ERR_CONFIG_INVALID', 'balancer option predict must be a function');
    }
    this.predict = predict as PredictFn | undefined;
    this.penaltyMs = numberOption(options, 'failurePenaltyMs', DEFAULT_FAILURE_PENALTY_MS, 0);
    this.memoryMs = numberOption(options, 'memoryMs', 5000, 1);
    this.hintTauMs = numberOption(options, 'hintTauMs', 10_000, 1);
    this.stalenessPenalty = numberOption(options, 'stalenessPenalty', 0.5, 0);
    this.priorWeight = numberOption(options, 'priorWeight', 2, 1e-6);
    this.cpuWeight = numberOption(options, 'cpuWeight', 0.5, 0);
    this.defaultLatencyMs = numberOption(options, 'defaultLatencyMs', 10, 1e-3);
    this.scoreAllMax = numberOption(options, 'scoreAllMax', 16, 1);
    this.sampleSize = Math.round(numberOption(options, 'sampleSize', 4, 2, 64));
    this.all = new LatencyBaseline(this.memoryMs);
  }

  pick(candidates: readonly Endpoint[], req: PickRequest): Endpoint {
    const n = candidates.length;
    const rnd = this.deps.random;
    if (n === 1 || (this.exploration > 0 && rnd() < this.exploration)) {
      return this.track(candidates[randomIndex(rnd, n)]!);
    }
    const now = this.deps.clock.now();
    const b = this.baselineMs(req, now);
    let best = candidates[0]!;
    let bestScore = Infinity;
    let ties = 0;
    const consider = (ep: Endpoint): void => {
      const s = this.score(ep, req, b, now);
      if (s < bestScore) {
        best = ep;
        bestScore = s;
        ties = 1;
      } else if (s === bestScore && rnd() * ++ties < 1) best = ep;
    };
    if (n <= this.scoreAllMax) {
      for (const ep of candidates) consider(ep);
    } else {
      const d = Math.min(this.sampleSize, n);
      for (let k = 0; k < d; k++) {
        let i: number;
        do i = randomIndex(rnd, n);
        while (this.taken(i, k));
        this.picked[k] = i;
        consider(candidates[i]!);
      }
    }
    return this.track(best);
  }

  onCallEnded(ep: Endpoint, req: PickRequest, outcome: CallOutcome): void {
    const s = this.own.get(ep.id);
    if (!s) return; // never picked by us, or removed since
    const now = this.deps.clock.now();
    const d = decay(now - s.atMs, this.memoryMs);
    s.ratioSum *= d;
    s.ratioN *= d;
    s.ok *= d;
    s.failed *= d;
    s.atMs = Math.max(s.atMs, now);
    if (!outcome.ok) {
      s.failed += 1; // a failure's latency says nothing about service time: it counts in e only
      return;
    }
    s.ok += 1;
    const kib = req.payloadBytes / 1024;
    const m = this.methodBaseline(req.method);
    // normalise by method and payload, once the baseline has a couple of samples to stand on
    if (m && m.weight(now) >= 2) {
      s.ratioSum += outcome.latencyMs / m.predict(kib);
      s.ratioN += 1;
    }
    m?.add(kib, outcome.latencyMs, now);
    this.all.add(kib, outcome.latencyMs, now);
  }

  onEndpointRemoved(id: string): void {
    this.own.delete(id);
  }

  /** The score of `ep` for `req` (lower is better), as `pick` computes it; for tests and status. */
  score(
    ep: Endpoint,
    req: PickRequest,
    b = this.baselineMs(req, this.deps.clock.now()),
    now = this.deps.clock.now(),
  ): number {
    const f = this.features(ep, req, b, now);
    const service = this.serviceMs(f);
    let latency = this.predict?.(ep, req, f);
    if (latency === undefined || !Number.isFinite(latency)) latency = this.heuristicMs(f, service);
    latency = Math.max(latency, f.oldestInflightAgeMs + service);
    return (1 - f.errorRate) * latency + f.errorRate * this.penaltyMs;
  }

  /** Fills and returns the (reused) feature object for `ep` and `req`. */
  features(ep: Endpoint, req: PickRequest, b: number, now: number): PredictiveFeatures {
    const f = this.f;
    const s = this.own.get(ep.id);
    const d = s ? decay(now - s.atMs, this.memoryMs) : 0;
    const ok = s ? s.ok * d : 0;
    const failed = s ? s.failed * d : 0;
    const h = ep.hints;
    const hintAge = h ? now - (h.atMs ?? now) : Infinity;
    const fresh = h ? decay(hintAge, this.hintTauMs) : 0;
    f.baselineMs = b;
    f.payloadKiB = req.payloadBytes / 1024;
    f.samples = s ? s.ratioN * d : 0;
    f.latencyRatio = s && s.ratioN > 0 ? s.ratioSum / s.ratioN : NaN;
    f.inflight = ep.inflight;
    f.oldestInflightAgeMs =
      ep.oldestInflightStartMs === undefined ? 0 : Math.max(0, now - ep.oldestInflightStartMs);
    f.errorRate = (failed + fresh * (h?.errorRate ?? 0)) / (ok + failed + 1);
    f.hintLatencyMs = h?.predictedLatencyMs ?? NaN;
    f.hintAgeMs = hintAge;
    f.hintFreshness = fresh;
    f.queueLength = h?.queueLength ?? NaN;
    const load = ep.load;
    f.cpu =
      load?.cpu !== undefined ? load.cpu * decay(now - load.atMs, this.hintTauMs) : (h?.cpu ?? NaN) * fresh;
    f.memory = load?.memory ?? h?.memory ?? NaN;
    return f;
  }

  private serviceMs(f: PredictiveFeatures): number {
    const prior = Number.isNaN(f.hintLatencyMs)
      ? f.baselineMs
      : f.hintFreshness * f.hintLatencyMs +
        (1 - f.hintFreshness) * f.baselineMs * (1 + this.stalenessPenalty);
    const own = Number.isNaN(f.latencyRatio) ? 0 : f.latencyRatio * f.samples * f.baselineMs;
    return (own + this.priorWeight * prior) / (f.samples + this.priorWeight);
  }

  private heuristicMs(f: PredictiveFeatures, service: number): number {
    const q = Number.isNaN(f.queueLength)
      ? f.inflight
      : f.inflight + f.hintFreshness * Math.max(0, f.queueLength - f.inflight);
    const hot = Number.isNaN(f.cpu) ? 0 : Math.max(0, f.cpu - 0.8) / 0.2;
    return service * (1 + q) * (1 + this.cpuWeight * hot);
  }

  private baselineMs(req: PickRequest, now: number): number {
    const kib = req.payloadBytes / 1024;
    const m = this.methods.get(req.method);
    if (m && m.weight(now) >= 1) return m.predict(kib);
    return this.all.weight(now) >= 1 ? this.all.predict(kib) : this.defaultLatencyMs;
  }

  private methodBaseline(method: string): LatencyBaseline | undefined {
    let m = this.methods.get(method);
    if (!m && this.methods.size < MAX_METHODS)
      this.methods.set(method, (m = new LatencyBaseline(this.memoryMs)));
    return m;
  }

  private taken(i: number, k: number): boolean {
    for (let j = 0; j < k; j++) if (this.picked[j] === i) return true;
    return false;
  }

  private track(ep: Endpoint): Endpoint {
    if (!this.own.has(ep.id))
      this.own.set(ep.id, { ratioSum: 0, ratioN: 0, ok: 0, failed: 0, atMs: this.deps.clock.now() });
    return ep;
  }
}

registerBalancer('Predictive', (deps, options) => new Predictive(deps, options));
