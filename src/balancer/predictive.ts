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
 *   A = Σ b over this router's calls in flight there (the work it has put ahead of a new call, counted
 *       at onCallStarted; a typical call's latency for any it did not see start)
 *   O = fq · max(0, queueLength − inflight) · typical   — other routers' calls there, from the operator's
 *       lagged queue length, trusted only while fresh on the server's own time scale:
 *       fq = exp(−hintAge / (queueTurnover · S)). A queue turns over in a few service times; a
 *       figure older than that says little, and every router acting on the same stale queue herds.
 *   L = (S + (S/b) · waitWeight · (A + O)) · (1 + cpuWeight · fq · max(0, cpu − 0.8) / 0.2)
 *       — the call's own service plus a share of the work ahead (several slots share it), both scaled
 *       by how slow the endpoint is; the wait is additive, so a small call behind a large one waits
 *       and a large call is not charged as if every call ahead were as large. ORCA CPU matters only near
 *       saturation and only while fresh; lagged CPU alone misleads.
 *   e = (failures + f · hintErrorRate) / (calls + 1)   — own decayed counts, shrunk towards the fleet's
 *       error rate while that is fresh; as the counts decay, an avoided server is tried again.
 *
 * Whole pool scored when it has at most `scoreAllMax` (16) endpoints — on mixed pools scoring every
 * server closes far more of the gap to an oracle than scoring a few — else `sampleSize` (4) distinct ones
 * at random (power of d choices, Mitzenmacher). Ties, and near-ties within `tieTolerance` (5%) of the
 * best score, are broken at random, and with probability `exploration` (0.05) a uniformly random
 * candidate is taken, so estimates of avoided servers stay current and routers sharing the same stale
 * view do not herd; but only one where this router has nothing in flight, and a failing one with
 * probability (1 − e)^20 only. A server whose own samples are old is explored up to 4× as often.
 *
 * Recovery (test/unit/balancer/predictive-recovery.test.ts): a server that was slow and is fast again
 * must win back its share within seconds. Own figures of a server we no longer send to fade towards
 * the pool's (ratio 1) after `forgetMs` without a sample; the operator's latency figure, which lags,
 * gives way to a few own samples; the pooled baseline down-weights outliers (latency-baseline.ts).
 *
 * Options: exploration, predict, failurePenaltyMs (1000), memoryMs (decay of own figures, 5000),
 * hintTauMs (10000, the telemetry interval), stalenessPenalty (0.5), priorWeight (2), cpuWeight (0.5),
 * defaultLatencyMs (10), scoreAllMax (16), sampleSize (4), queueTurnover (20), waitWeight (0.5),
 * forgetMs (300), tieTolerance (0.05).
 * The heuristic's form and defaults were chosen on the simulator's public scenarios (bench/scenarios),
 * one configuration for all of them.
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
  pendingMs: number; // Σ baseline latency of this router's calls in flight there (work ahead of a new call)
  pendingN: number; // how many calls pendingMs counts (calls started without onCallStarted are not)
  ok: number;
  failed: number;
  atMs: number;
  lastSampleMs: number; // when ratioSum last took a sample (-Infinity: never)
}

const MAX_METHODS = 512;
/** Exploration of a server we have no recent samples of runs at up to this many times the base rate. */
const STALE_BOOST = 4;

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
  private readonly queueTurnover: number;
  private readonly waitWeight: number;
  private readonly forgetMs: number;
  private readonly tieTolerance: number;
  /** Work ahead (ms) of a new call on the endpoint being scored; set by `score` for `heuristicMs`. */
  private aheadMs = 0;
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
  private scores = new Float64Array(64);
  private scored = new Int32Array(64);

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
    this.queueTurnover = numberOption(options, 'queueTurnover', 20, 1e-6);
    this.waitWeight = numberOption(options, 'waitWeight', 0.5, 0);
    this.forgetMs = numberOption(options, 'forgetMs', 300, 1);
    this.tieTolerance = numberOption(options, 'tieTolerance', 0.05, 0);
    this.all = new LatencyBaseline(this.memoryMs);
  }

  pick(candidates: readonly Endpoint[], req: PickRequest): Endpoint {
    const n = candidates.length;
    const rnd = this.deps.random;
    if (n === 1) return this.track(candidates[0]!);
    const now = this.deps.clock.now();
    const explore = Math.min(1, STALE_BOOST * this.exploration);
    if (this.exploration > 0 && rnd() < explore) {
      // Explore a server only while none of our calls is open there (one probe at a time: a stalled
      // server does not collect them), and hardly ever one we know is failing, where a call costs the
      // client the deadline; its failure rate decays and the plain score tries it again in time.
      // The rate grows with how stale our own figures for it are (up to STALE_BOOST × for one we have
      // not heard from in a memoryMs): a server we stopped sending to is known only by old samples and
      // a lagging operator figure, and only a probe shows it has recovered. One we use stays at the
      // base rate.
      const ep = candidates[randomIndex(rnd, n)]!;
      const boost = 1 + (STALE_BOOST - 1) * this.staleness(ep, now);
      if (
        rnd() * explore < Math.min(1, this.exploration * boost) &&
        ep.inflight === 0 &&
        (1 - this.failureRate(ep, now)) ** 20 > rnd()
      )
        return this.track(ep);
    }
    const b = this.baselineMs(req, now);
    let m = 0;
    let bestScore = Infinity;
    const consider = (i: number): void => {
      const s = this.score(candidates[i]!, req, b, now);
      this.scored[m] = i;
      this.scores[m++] = s;
      if (s < bestScore) bestScore = s;
    };
    if (n <= this.scoreAllMax) {
      if (this.scores.length < n) {
        this.scores = new Float64Array(n);
        this.scored = new Int32Array(n);
      }
      for (let i = 0; i < n; i++) consider(i);
    } else {
      const d = Math.min(this.sampleSize, n);
      for (let k = 0; k < d; k++) {
        let i: number;
        do i = randomIndex(rnd, n);
        while (this.taken(i, k));
        this.picked[k] = i;
        consider(i);
      }
    }
    // Near-ties (within tieTolerance of the best) are broken at random. Estimates of equally fast
    // endpoints differ by their noise; taking the strict minimum sent every call to whichever one
    // looked a hair faster for seconds on end, and an endpoint that had just recovered got nothing.
    const limit = bestScore * (1 + this.tieTolerance);
    let pick = 0;
    let ties = 0;
    for (let j = 0; j < m; j++) {
      const s = this.scores[j]!;
      if ((s <= limit || s === bestScore) && rnd() * ++ties < 1) pick = this.scored[j]!;
    }
    return this.track(candidates[pick]!);
  }

  onCallStarted(ep: Endpoint, req: PickRequest): void {
    const s = this.own.get(ep.id);
    if (!s) return;
    s.pendingMs += this.baselineMs(req, this.deps.clock.now());
    s.pendingN++;
  }

  onCallEnded(ep: Endpoint, req: PickRequest, outcome: CallOutcome): void {
    const s = this.own.get(ep.id);
    if (!s) return; // never picked by us, or removed since
    const now = this.deps.clock.now();
    if (ep.inflight > 0 && s.pendingN > 0) {
      s.pendingMs = Math.max(0, s.pendingMs - this.baselineMs(req, now));
      s.pendingN--;
    } else {
      s.pendingMs = 0; // nothing open: start afresh, so rounding never accumulates
      s.pendingN = 0;
    }
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
      // the faded ratio becomes the remembered one, so a new sample moves it from there (see ownRatio)
      if (s.ratioN > 0 && now - s.lastSampleMs > this.forgetMs) {
        s.ratioSum = s.ratioN * this.ownRatio(s, now);
      }
      s.ratioSum += outcome.latencyMs / m.predict(kib);
      s.ratioN += 1;
      s.lastSampleMs = now;
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
    const st = this.own.get(ep.id);
    const mean = this.typicalMs(now);
    // own calls in flight there: their baselines, and a typical call for any not seen starting
    this.aheadMs = (st?.pendingMs ?? 0) + Math.max(0, f.inflight - (st?.pendingN ?? 0)) * mean;
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
    f.latencyRatio = s && s.ratioN > 0 ? this.ownRatio(s, now) : NaN;
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

  /**
   * The endpoint's own latency ratio, faded towards the pool's (1) while it has no new samples:
   * ratio^exp(−(Δ − forgetMs)/forgetMs) once Δ, the time since its last sample, exceeds forgetMs.
   * Without this an endpoint that was slow stayed slow in our eyes until enough new samples outweighed
   * the old: the decayed sums keep their
   * mean (only the count decays), one 1,000 ms call among 3 ms ones counts as much as 300 of them, and
   * an avoided endpoint gets new samples only from rare exploration — a backend back to 3 ms after a
   * spell at 1,000 ms got ~0% of the traffic 20 s later (test/unit/balancer/predictive-recovery).
   * Fading in log space forgets a 300× outlier as fast as a 2× one. An endpoint still slow is caught
   * again by its first new call: the stall floor (age of the oldest open call) while it runs, then its
   * sample. forgetMs (300) is short beside memoryMs, but the grace of one forgetMs leaves an endpoint
   * we keep sending to (a sample every few tens of ms) with its figures exactly as before; this acts on
   * endpoints we stopped sending to. A slow one is re-tried about every 2 s + its latency, one call
   * at a time (the stall floor keeps others off while that call is open).
   */
  private ownRatio(s: OwnStats, now: number): number {
    const r = s.ratioSum / s.ratioN;
    return r > 0 ? r ** decay(now - s.lastSampleMs - this.forgetMs, this.forgetMs) : r;
  }

  /** 0 for a server we have recent samples of (or none ever), towards 1 as they age over memoryMs. */
  private staleness(ep: Endpoint, now: number): number {
    const s = this.own.get(ep.id);
    if (!s || s.ratioN === 0) return 0;
    return 1 - decay(now - s.lastSampleMs, this.memoryMs);
  }

  /** The expected failure rate e of a call to `ep` (as in `features`), without the rest. */
  private failureRate(ep: Endpoint, now: number): number {
    const s = this.own.get(ep.id);
    const d = s ? decay(now - s.atMs, this.memoryMs) : 0;
    const h = ep.hints;
    const fresh = h ? decay(now - (h.atMs ?? now), this.hintTauMs) : 0;
    return ((s ? s.failed * d : 0) + fresh * (h?.errorRate ?? 0)) / ((s ? (s.ok + s.failed) * d : 0) + 1);
  }

  private serviceMs(f: PredictiveFeatures): number {
    // The operator's figure is a prior for an endpoint we know too little of ourselves: it lags (it
    // comes from telemetry), and a stale one kept a recovered endpoint at its old latency (fresh by
    // its timestamp, 1,000 ms of an old spell against our own 3 ms calls) — so our own recent samples
    // take its weight away, a few of them all of it. What they take is not staleness: it goes to b.
    const trust = f.hintFreshness * Math.exp(-4 * f.samples);
    const prior = Number.isNaN(f.hintLatencyMs)
      ? f.baselineMs
      : trust * f.hintLatencyMs +
        (f.hintFreshness - trust) * f.baselineMs +
        (1 - f.hintFreshness) * f.baselineMs * (1 + this.stalenessPenalty);
    const own = Number.isNaN(f.latencyRatio) ? 0 : f.latencyRatio * f.samples * f.baselineMs;
    return (own + this.priorWeight * prior) / (f.samples + this.priorWeight);
  }

  private heuristicMs(f: PredictiveFeatures, service: number): number {
    // the lagged figures describe a queue that turns over in a few service times: trust them that long
    const fl = decay(f.hintAgeMs, this.queueTurnover * service);
    const others = Number.isNaN(f.queueLength)
      ? 0
      : fl * Math.max(0, f.queueLength - f.inflight) * this.typicalMs(this.deps.clock.now());
    const hot = Number.isNaN(f.cpu) ? 0 : (fl * Math.max(0, f.cpu - 0.8)) / 0.2;
    const slowness = service / f.baselineMs;
    return (service + slowness * this.waitWeight * (this.aheadMs + others)) * (1 + this.cpuWeight * hot);
  }

  /** A typical call's latency on a typical endpoint (all methods and payloads), ms. */
  private typicalMs(now: number): number {
    return this.all.weight(now) >= 1 ? this.all.mean() : this.defaultLatencyMs;
  }

  /** What this policy knows of `ep` for `req` now: the inputs a training sample records at dispatch. */
  dispatchFeatures(ep: Endpoint, req: PickRequest): PredictiveFeatures {
    const now = this.deps.clock.now();
    return this.features(ep, req, this.baselineMs(req, now), now);
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
      this.own.set(ep.id, {
        ratioSum: 0,
        ratioN: 0,
        pendingMs: 0,
        pendingN: 0,
        ok: 0,
        failed: 0,
        atMs: this.deps.clock.now(),
        lastSampleMs: -Infinity,
      });
    return ep;
  }
}

registerBalancer('Predictive', (deps, options) => new Predictive(deps, options));
