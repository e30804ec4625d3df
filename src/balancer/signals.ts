import { Status } from '../grpc/status.js';
import { decay } from './common.js';
import { LatencyBaseline } from './latency-baseline.js';
import type { CallOutcome, Endpoint, PickRequest, PredictiveFeatures } from './types.js';

export type { PredictiveFeatures } from './types.js';

/**
 * What one router knows of its endpoints from its own calls (docs/architecture.md, "Balancing, breakers and limits"; docs/architecture.md, "Model"): per endpoint its
 * latencies normalised by method and payload, its failures, and the work it has in flight there; per
 * method a latency baseline. This is the one place those figures are computed. The Predictive policy
 * scores with them (predictive.ts), the router records them as training samples at dispatch
 * (router-link.ts, through `dispatchInput` in src/model/features.ts), and the simulator's sample
 * collector keeps a copy fed with the same call starts and ends whichever policy places the calls
 * (src/tools/sim/samples.ts) — so the model is trained on exactly the inputs it is later asked about
 * (test/unit/model/dispatch-features.test.ts).
 *
 * Pure: time is passed in; nothing here reads a clock or draws a random number.
 *
 *   b = this router's latency for this method and payload on a typical endpoint (an online least-squares
 *       fit of latency on payload KiB per method, exponentially decayed, pooled over endpoints;
 *       latency-baseline.ts); before a method has a sample, the pooled fit over all methods, else
 *       `defaultLatencyMs`
 *   latencyRatio = the endpoint's decayed mean of latency ÷ b over its successful calls (at most
 *       ratioWindow samples' weight), faded towards the pool's (1) after `forgetMs` without a new
 *       sample (see ownRatio), times its structure for the call's method and payload (classStructure)
 *   errorRate = (failures + f · hintErrorRate) / (calls + 1): own decayed counts, shrunk towards the
 *       fleet's error rate while that is fresh (f = exp(−hintAge/hintTauMs))
 *
 * Options (with Predictive's names and defaults): memoryMs (5000), hintTauMs (10000), defaultLatencyMs
 * (10), forgetMs (300), ratioWindow (30); and the built-in estimate's (see builtinEstimateMs):
 * stalenessPenalty (0.5), priorWeight (2), cpuWeight (0.5), queueTurnover (5), waitWeight (0.5).
 *
 * The built-in estimate. `features` also fills in the latency Predictive's own (hand-tuned) scoring
 * expects of the call on the endpoint, `estimateMs`, computed by the pure function builtinEstimateMs
 * below. It lives here rather than in predictive.ts because it is an input of the learned model too
 * (features version 3, src/model/features.ts dispatchInput): the model learns a correction to it
 * (residual learning), so the router's samples, the simulator's samples and the policy's predictions
 * must all carry the very same figure — and they all take it from here.
 */

/** The built-in estimate's constants (Predictive's options of the same names; predictive.ts). */
export interface EstimateOptions {
  stalenessPenalty: number;
  priorWeight: number;
  cpuWeight: number;
  queueTurnover: number;
  waitWeight: number;
}

export interface SignalOptions extends EstimateOptions {
  memoryMs: number;
  hintTauMs: number;
  defaultLatencyMs: number;
  forgetMs: number;
  /**
   * The most samples' weight an endpoint's ratio is a mean over. Its time decay (memoryMs) alone
   * held a second's calls at one sixth of the mean where a router sends an endpoint ~130 calls/s, so
   * a server slowed to half speed by an antagonist still looked 1.2× typical a second later; capped at
   * 30 the ratio follows within a few tens of calls, and 30 samples still average out ±20% noise to
   * a few percent. On antagonist-bursts (2 seeds) p99 12.6 → 11.3 ms (Oracle 10.2), the other public
   * scenarios within noise (bench/results/families.md).
   */
  ratioWindow: number;
}

export const SIGNAL_DEFAULTS: SignalOptions = {
  memoryMs: 5000,
  hintTauMs: 10_000,
  defaultLatencyMs: 10,
  forgetMs: 300,
  ratioWindow: 30,
  stalenessPenalty: 0.5,
  priorWeight: 2,
  cpuWeight: 0.5,
  queueTurnover: 5,
  waitWeight: 0.5,
};

/** One endpoint's own figures. */
export interface OwnStats {
  ratioSum: number; // Σ latency / baseline over successful calls (decayed)
  ratioN: number;
  pendingMs: number; // Σ baseline latency of this router's calls in flight there (work ahead of a new call)
  pendingN: number; // how many calls pendingMs counts (calls started without onCallStarted are not)
  ok: number;
  failed: number;
  atMs: number;
  lastSampleMs: number; // when ratioSum last took a sample (-Infinity: never)
  /** Per method: this endpoint's own latency line (latency on payload KiB), for classStructure. */
  classes?: Map<string, LatencyBaseline>;
  /** The lines' mean price over the pool's at their mean payloads, weighted by samples (classNorm). */
  classNorm?: number;
  /**
   * The start of the oldest try the router cut here for slowness that the endpoint has not answered
   * since (Infinity: none; see onCensored): the stall floor's age counts from it as from an open call.
   */
  unansweredSinceMs: number;
}

const MAX_METHODS = 512;
/** Methods whose own line an endpoint keeps (classStructure); calls of others use its ratio alone. */
const MAX_CLASSES_PER_ENDPOINT = 64;
/** How many samples of a method on an endpoint weigh as much as the prior "no structure" (1). */
const CLASS_PRIOR_WEIGHT = 3;
/** classStructure is kept within [1/CLASS_BOUND, CLASS_BOUND]. */
const CLASS_BOUND = 50;

function blankFeatures(): PredictiveFeatures {
  return {
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
    reportedCpu: NaN,
    memory: NaN,
    typicalMs: NaN,
    aheadMs: 0,
    serviceMs: NaN,
    estimateMs: NaN,
  };
}

/**
 * S, the predicted service time of the request on the endpoint (predictive.ts explains the formula):
 * the endpoint's own recent latency ratios times b, shrunk towards a prior with weight priorWeight.
 * The operator's figure is a prior for an endpoint we know too little of ourselves: it lags (it comes
 * from telemetry), and a stale one kept a recovered endpoint at its old latency (fresh by its
 * timestamp, 1,000 ms of an old spell against our own 3 ms calls) — so our own recent samples take its
 * weight away, a few of them all of it. What they take is not staleness: it goes to b. Pure.
 */
export function serviceEstimateMs(f: PredictiveFeatures, o: EstimateOptions): number {
  const trust = f.hintFreshness * Math.exp(-4 * f.samples);
  const prior = Number.isNaN(f.hintLatencyMs)
    ? f.baselineMs
    : trust * f.hintLatencyMs +
      (f.hintFreshness - trust) * f.baselineMs +
      (1 - f.hintFreshness) * f.baselineMs * (1 + o.stalenessPenalty);
  const own = Number.isNaN(f.latencyRatio) ? 0 : f.latencyRatio * f.samples * f.baselineMs;
  return (own + o.priorWeight * prior) / (f.samples + o.priorWeight);
}

/**
 * The built-in scoring's latency estimate L of the request on the endpoint, ms (predictive.ts gives
 * the formula and its reasons), with the stall floor (stallFloorMs). It reads
 * only `f` (serviceMs, aheadMs and typicalMs included) and the constants: pure, so the policy, the
 * router's training samples and the simulator's compute the same figure. Predictive without a model
 * scores with it; with a model, the model starts from it (src/model/features.ts).
 */
export function builtinEstimateMs(f: PredictiveFeatures, o: EstimateOptions): number {
  const service = f.serviceMs;
  // the lagged figures describe a queue that turns over in a few service times: trust them that long
  const fl = decay(f.hintAgeMs, o.queueTurnover * service);
  const others = Number.isNaN(f.queueLength) ? 0 : fl * Math.max(0, f.queueLength - f.inflight) * f.typicalMs;
  const hot = Number.isNaN(f.cpu) ? 0 : (fl * Math.max(0, f.cpu - 0.8)) / 0.2;
  const slowness = service / f.baselineMs;
  const latency = (service + slowness * o.waitWeight * (f.aheadMs + others)) * (1 + o.cpuWeight * hot);
  return Math.max(latency, stallFloorMs(f.oldestInflightAgeMs, service));
}

/**
 * The stall floor: a call sent where this router's oldest open call is `ageMs` old takes at least
 * max(0, age − S) + S = max(age, S). What the oldest call has waited beyond a service time is evidence
 * of a stall (a pause, a black hole) that a new call waits out too, and it grows every millisecond,
 * so a stalled server is caught before any telemetry. Only the excess counts: charging the whole age
 * (age + S) made a busy multi-slot server look stalled whenever a long call of ours ran there — on the
 * mixed pool a fast server running one 25 ms search looked worse than an idle half-speed one, and the
 * long calls that went there made the tail. Pure.
 */
export function stallFloorMs(ageMs: number, serviceMs: number): number {
  return Math.max(ageMs, serviceMs);
}

export class RouterSignals {
  readonly options: SignalOptions;
  private readonly own = new Map<string, OwnStats>();
  private readonly methods = new Map<string, LatencyBaseline>();
  private readonly all: LatencyBaseline;
  private readonly f = blankFeatures();

  constructor(options: Partial<SignalOptions> = {}) {
    this.options = { ...SIGNAL_DEFAULTS, ...options };
    this.all = new LatencyBaseline(this.options.memoryMs);
  }

  /** Starts keeping figures for `ep` (idempotent). */
  track(ep: Endpoint, now: number): OwnStats {
    let s = this.own.get(ep.id);
    if (!s) {
      s = {
        ratioSum: 0,
        ratioN: 0,
        pendingMs: 0,
        pendingN: 0,
        ok: 0,
        failed: 0,
        atMs: now,
        lastSampleMs: -Infinity,
        unansweredSinceMs: Infinity,
      };
      this.own.set(ep.id, s);
    }
    return s;
  }

  /** A call for `req` was sent to `ep`: its baseline joins the work this router has ahead there. */
  onCallStarted(ep: Endpoint, req: PickRequest, now: number): void {
    const s = this.track(ep, now);
    s.pendingMs += this.baselineMs(req, now);
    s.pendingN++;
  }

  /** A call to `ep` ended (after ep.inflight was lowered). */
  onCallEnded(ep: Endpoint, req: PickRequest, outcome: CallOutcome, now: number): void {
    const s = this.own.get(ep.id);
    if (!s) return; // never started by us, or removed since
    if (ep.inflight > 0 && s.pendingN > 0) {
      s.pendingMs = Math.max(0, s.pendingMs - this.baselineMs(req, now));
      s.pendingN--;
    } else {
      s.pendingMs = 0; // nothing open: start afresh, so rounding never accumulates
      s.pendingN = 0;
    }
    const d = decay(now - s.atMs, this.options.memoryMs);
    s.ratioSum *= d;
    s.ratioN *= d;
    s.ok *= d;
    s.failed *= d;
    s.atMs = Math.max(s.atMs, now);
    const kib = req.payloadBytes / 1024;
    if (outcome.censored) return this.onCensored(s, req.method, kib, outcome, now);
    // it answered (a failure too), or a call ended at its own deadline, as an open call's age ends
    // then: no stall to remember
    s.unansweredSinceMs = Infinity;
    if (!outcome.ok) {
      s.failed += 1; // a failure's latency says nothing about service time: it counts in e only
      return;
    }
    s.ok += 1;
    const m = this.methodBaseline(req.method);
    // normalise by method and payload, once the baseline has a couple of samples to stand on
    if (m && m.weight(now) >= 2) {
      this.addRatio(s, outcome.latencyMs / m.predict(kib), now);
      // answers only: a censored try's bound says nothing of how its kind of call runs there
      this.classLine(s, req.method)?.add(kib, outcome.latencyMs, now);
      s.classNorm = this.classNorm(s);
    }
    m?.add(kib, outcome.latencyMs, now);
    this.all.add(kib, outcome.latencyMs, now);
  }

  /**
   * A try the router cut before its answer (CallOutcome.censored: a lost hedge race, its per-try
   * deadline, the client gone): its latency is at least `boundMs` (right-censored). It is neither an
   * answer nor a failure (ok and failed keep their counts). As a ratio sample it stands for E[X | X >
   * bound], which is about the expectation when the bound is below it and above the bound otherwise;
   * so a bound above what the endpoint's own ratio expects of the call enters as a sample of the bound
   * (evidence of slowness, and a conservative one: the true latency was longer), and one below is
   * dropped (a hedge cancelled 0.1 ms after it was sent says nothing of its endpoint's speed; taken as
   * a 0.1 ms answer it made the endpoint look fast). Never into the pooled baselines: a bound is not a
   * typical call's latency.
   *
   * A try cut for being slow ended for the router, not for the server: a paused server still holds
   * it. While it was open, its age was the stall floor (stallFloorMs) that kept new calls away; cut,
   * it would take that evidence with it, and the next calls go into the same pause, are cut in turn,
   * and so on for the whole pause. Measured on gc-pauses (Predictive with the model, per-try
   * deadlines at 2 × predicted p99): 0.42% of tries cut against 0.06% of calls stuck without
   * deadlines, and p99 over all calls 4.8% worse than the fixed timeout. So the start of a try cut at
   * its deadline (DEADLINE_EXCEEDED: the router's verdict that it is anomalously slow) is kept
   * (unansweredSinceMs), and the stall floor counts its age as an open call's until the endpoint
   * answers any call (or a probe) again. Not a hedge race's loser: cut when the other try answered,
   * after about its predicted p95, it is ordinary variation more often than a stall, and kept as a
   * stall it cost a pool hedging every call after 1 ms 0.2% on its mean latency.
   */
  private onCensored(s: OwnStats, method: string, kib: number, o: CallOutcome, now: number): void {
    const m = this.methods.get(method);
    if (!m || m.weight(now) < 2) return;
    const ratio = o.latencyMs / m.predict(kib);
    const expected = s.ratioN > 0 ? this.ownRatio(s, now) : 1;
    if (!(ratio > expected)) return;
    this.addRatio(s, ratio, now);
    if (o.code === Status.DEADLINE_EXCEEDED)
      s.unansweredSinceMs = Math.min(s.unansweredSinceMs, o.startedAtMs);
  }

  /** One latency/baseline ratio into the endpoint's own figures. */
  private addRatio(s: OwnStats, ratio: number, now: number): void {
    // the faded ratio becomes the remembered one, so a new sample moves it from there (see ownRatio)
    if (s.ratioN > 0 && now - s.lastSampleMs > this.options.forgetMs) {
      s.ratioSum = s.ratioN * this.ownRatio(s, now);
    }
    // a mean over at most ratioWindow samples' weight (SignalOptions)
    if (s.ratioN > this.options.ratioWindow) {
      s.ratioSum *= this.options.ratioWindow / s.ratioN;
      s.ratioN = this.options.ratioWindow;
    }
    s.ratioSum += ratio;
    s.ratioN += 1;
    s.lastSampleMs = now;
  }

  onEndpointRemoved(id: string): void {
    this.own.delete(id);
  }

  /** Its breaker lets it be tried again: the failures that opened it no longer count. */
  forgetFailures(id: string): void {
    const s = this.own.get(id);
    if (s) s.failed = 0;
  }

  /** Fills and returns the (reused) feature object for `ep` and `req`, with baseline `b`. */
  features(ep: Endpoint, req: PickRequest, b: number, now: number): PredictiveFeatures {
    const f = this.f;
    const { memoryMs, hintTauMs } = this.options;
    const s = this.own.get(ep.id);
    const d = s ? decay(now - s.atMs, memoryMs) : 0;
    const ok = s ? s.ok * d : 0;
    const failed = s ? s.failed * d : 0;
    const h = ep.hints;
    const hintAge = h ? now - (h.atMs ?? now) : Infinity;
    const fresh = h ? decay(hintAge, hintTauMs) : 0;
    f.baselineMs = b;
    f.payloadKiB = req.payloadBytes / 1024;
    f.samples = s ? s.ratioN * d : 0;
    f.latencyRatio = s && s.ratioN > 0 ? this.ownRatio(s, now) * this.classStructure(s, req, now) : NaN;
    f.inflight = ep.inflight;
    // the oldest open call's age, or a try cut for slowness there and not answered since (onCensored)
    const oldestMs = Math.min(ep.oldestInflightStartMs ?? Infinity, s?.unansweredSinceMs ?? Infinity);
    f.oldestInflightAgeMs = oldestMs === Infinity ? 0 : Math.max(0, now - oldestMs);
    f.errorRate = (failed + fresh * (h?.errorRate ?? 0)) / (ok + failed + 1);
    f.typicalMs = this.typicalMs(now);
    f.hintLatencyMs =
      h?.predictedLatencyMs ?? (h?.relativeCost !== undefined ? h.relativeCost * f.typicalMs : NaN);
    f.hintAgeMs = hintAge;
    f.hintFreshness = fresh;
    f.queueLength = h?.queueLength ?? NaN;
    const load = ep.load;
    f.cpu = load?.cpu !== undefined ? load.cpu * decay(now - load.atMs, hintTauMs) : (h?.cpu ?? NaN) * fresh;
    f.reportedCpu = load?.cpu ?? h?.cpu ?? NaN;
    f.memory = load?.memory ?? h?.memory ?? NaN;
    // own calls in flight there: their baselines, and a typical call for any not seen starting
    f.aheadMs = (s?.pendingMs ?? 0) + Math.max(0, f.inflight - (s?.pendingN ?? 0)) * f.typicalMs;
    f.serviceMs = serviceEstimateMs(f, this.options);
    f.estimateMs = builtinEstimateMs(f, this.options);
    return f;
  }

  /**
   * What this router knows of `ep` for `req` now, before the call is counted against `ep`: the inputs
   * a training sample records at dispatch, and what the policy scored the endpoint with.
   */
  dispatchFeatures(ep: Endpoint, req: PickRequest, now: number): PredictiveFeatures {
    return this.features(ep, req, this.baselineMs(req, now), now);
  }

  /**
   * The endpoint's own latency ratio, faded towards the pool's (1) while it has no new samples:
   * ratio^exp(−(Δ − forgetMs)/forgetMs) once Δ, the time since its last sample, exceeds forgetMs.
   * Without this an endpoint that was slow stayed slow in our eyes until enough new samples outweighed
   * the old: the decayed sums keep their mean (only the count decays), one 1,000 ms call among 3 ms
   * ones counts as much as 300 of them, and an avoided endpoint gets new samples only from rare
   * exploration — a backend back to 3 ms after a spell at 1,000 ms got ~0% of the traffic 20 s later
   * (test/unit/balancer/predictive-recovery). Fading in log space forgets a 300× outlier as fast as a
   * 2× one. An endpoint still slow is caught again by its first new call: the stall floor (age of the
   * oldest open call) while it runs, then its sample. forgetMs (300) is short beside memoryMs, but the
   * grace of one forgetMs leaves an endpoint we keep sending to (a sample every few tens of ms) with
   * its figures exactly as before; this acts on endpoints we stopped sending to.
   */
  ownRatio(s: OwnStats, now: number): number {
    const r = s.ratioSum / s.ratioN;
    return r > 0 ? r ** this.fade(s, now) : r;
  }

  /**
   * The exponent own figures fade with while unsampled: exp(−(Δ − forgetMs)/forgetMs), Δ the time since
   * the last sample; 1 within forgetMs.
   */
  private fade(s: OwnStats, now: number): number {
    const { forgetMs } = this.options;
    return decay(now - s.lastSampleMs - forgetMs, forgetMs);
  }

  /**
   * How this endpoint treats this kind of call, beside how it treats calls in general: its own latency
   * line for the method at this payload over the pool's (b), divided by the same over all its calls
   * (classNorm), shrunk towards 1 (no structure) by the weight of its samples of the method
   * (CLASS_PRIOR_WEIGHT). One speed per endpoint cannot describe a server slow for one method only (a
   * cold index) or slow for large payloads only (a slow disk): the ratio averages the kinds of calls
   * and misprices each. The ratio still carries the level and what changes quickly (load, a stall, a
   * recovery, and its fading, ownRatio); this factor carries only the structure: an endpoint with one
   * kind of call has none at its mean payload, whatever the pool's baseline did since.
   * Hierarchical shrinkage of a per-class mean towards its group's (empirical Bayes; Efron & Morris
   * 1975). Pure given the figures.
   */
  classStructure(s: OwnStats, req: PickRequest, now: number): number {
    const line = s.classes?.get(req.method);
    const m = this.methods.get(req.method);
    if (!line || !m || !s.classNorm) return 1;
    const n = line.weight(now);
    if (n <= 0) return 1;
    const kib = req.payloadBytes / 1024;
    // "no structure" is a line proportional to the pool's: its slope is the prior the endpoint's own
    // (noisy) slope is shrunk towards; shrunk towards 0 instead, a flat own line made small calls
    // look dear and large ones cheap wherever the pool's line rose (overload-ramp-limited: admitted
    // p99 26.4 → 29.0 ms)
    const x = line.meanKiB();
    const prior = (m.slope() * line.predict(x)) / m.predict(x);
    const raw = line.predictShrunk(kib, prior) / m.predict(kib) / s.classNorm;
    const bounded = Math.min(CLASS_BOUND, Math.max(1 / CLASS_BOUND, raw));
    if (!Number.isFinite(bounded)) return 1;
    const shrunk = (n * bounded + CLASS_PRIOR_WEIGHT) / (n + CLASS_PRIOR_WEIGHT);
    // it fades with the ratio (ownRatio): an endpoint we stopped sending to is priced as a typical one
    // for every kind of call, not only in general
    return shrunk ** this.fade(s, now);
  }

  /**
   * Σ w·line(x̄)/b(x̄) / Σ w over the endpoint's method lines (w their weights, x̄ their mean payloads).
   */
  private classNorm(s: OwnStats): number {
    let sum = 0;
    let weight = 0;
    for (const [method, line] of s.classes ?? []) {
      const m = this.methods.get(method);
      if (!m) continue;
      const x = line.meanKiB();
      const w = line.weight(s.atMs);
      sum += (w * line.predict(x)) / m.predict(x);
      weight += w;
    }
    return weight > 0 ? sum / weight : 0;
  }

  /** 0 for a server we have recent samples of (or none ever), towards 1 as they age over memoryMs. */
  staleness(ep: Endpoint, now: number): number {
    const s = this.own.get(ep.id);
    if (!s || s.ratioN === 0) return 0;
    return 1 - decay(now - s.lastSampleMs, this.options.memoryMs);
  }

  /** The expected failure rate of a call to `ep` (as in `features`), without the rest. */
  failureRate(ep: Endpoint, now: number): number {
    const s = this.own.get(ep.id);
    const d = s ? decay(now - s.atMs, this.options.memoryMs) : 0;
    const h = ep.hints;
    const fresh = h ? decay(now - (h.atMs ?? now), this.options.hintTauMs) : 0;
    return ((s ? s.failed * d : 0) + fresh * (h?.errorRate ?? 0)) / ((s ? (s.ok + s.failed) * d : 0) + 1);
  }

  /** A typical call's latency on a typical endpoint (all methods and payloads), ms. */
  typicalMs(now: number): number {
    return this.all.weight(now) >= 1 ? this.all.mean() : this.options.defaultLatencyMs;
  }

  /** b: the latency of `req` on a typical endpoint of the pool, ms. */
  baselineMs(req: PickRequest, now: number): number {
    const kib = req.payloadBytes / 1024;
    const m = this.methods.get(req.method);
    if (m && m.weight(now) >= 1) return m.predict(kib);
    return this.all.weight(now) >= 1 ? this.all.predict(kib) : this.options.defaultLatencyMs;
  }

  private classLine(s: OwnStats, method: string): LatencyBaseline | undefined {
    const classes = (s.classes ??= new Map());
    let line = classes.get(method);
    if (!line && classes.size < MAX_CLASSES_PER_ENDPOINT)
      classes.set(method, (line = new LatencyBaseline(this.options.memoryMs)));
    return line;
  }

  private methodBaseline(method: string): LatencyBaseline | undefined {
    let m = this.methods.get(method);
    if (!m && this.methods.size < MAX_METHODS)
      this.methods.set(method, (m = new LatencyBaseline(this.options.memoryMs)));
    return m;
  }
}
