import { Type, type Static } from '@sinclair/typebox';
import { registerBalancer } from './registry.js';
import { DEFAULT_FAILURE_PENALTY_MS, randomIndex } from './common.js';
import { RouterSignals, SIGNAL_DEFAULTS, stallFloorMs } from './signals.js';
import type {
  Balancer,
  BalancerDeps,
  CallOutcome,
  Endpoint,
  PickRequest,
  PredictFn,
  PredictiveFeatures,
} from './types.js';

export type { PredictFn, PredictiveFeatures } from './types.js';

/**
 * Predictive (docs/architecture.md, "Balancing, breakers and limits"): send each call where its predicted latency is lowest.
 *
 * score = (1 − e) · max(L, age, S) + e · failurePenaltyMs
 *
 * where L is the predicted latency of this request on the endpoint (the heuristic below; or, from
 * `options.predict`, the learned model's correction of it when the model answers: src/model/predictor.ts),
 * S the predicted service time, `age` how long the
 * oldest call this router has open there has been waiting (the stall floor, signals.ts stallFloorMs:
 * a stalled server is caught at once, before any telemetry), and e the expected failure rate: a
 * failure costs the deadline, so a server that fails fast is expensive, never cheap.
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
 *       figure older than that says little, and every router acting on the same stale queue herds
 *       (bench/results/model.md has why 5 service times).
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
 * best score, are broken at random.
 *
 * Exploration: with probability `exploration` (0.05) a uniformly random candidate is named for a
 * probe (Balancer.probeTarget): a shadow copy of this call, sent there by the router or simulator,
 * whose answer no client waits on, so estimates of avoided servers stay current and routers sharing
 * the same stale view do not herd. The client's call itself always goes where the score says: a slow
 * server never holds a client's call just to be measured. Only a server where this router has nothing
 * in flight is named (one probe at a time), a failing one with probability (1 − e)^20 only, and only
 * with a call whose baseline is at most `probeCostLimit` (2) × a typical call's (a probe takes the
 * server's capacity like any call). A server whose own samples are old is explored up to 4× as
 * often. With `probeMode: 'call'` the explored server gets the client's call instead (the behaviour
 * before probes, kept for comparison). A data path that sends no copies (the in-process grpc-js
 * policy) then explores not at all: an avoided server's own figures fade (Recovery, below) and the
 * plain score tries it again with a client's call.
 *
 * Recovery (test/unit/balancer/predictive-recovery.test.ts): a server that was slow and is fast again
 * must win back its share within seconds. Own figures of a server we no longer send to fade towards
 * the pool's (ratio 1) after `forgetMs` without a sample; the operator's latency figure, which lags,
 * gives way to a few own samples; the pooled baseline down-weights outliers (latency-baseline.ts).
 *
 * Config (PredictiveConfig): exploration, failurePenaltyMs (1000), memoryMs (decay of own figures,
 * 5000), hintTauMs (10000, the telemetry interval), stalenessPenalty (0.5), priorWeight (2), cpuWeight
 * (0.5), defaultLatencyMs (10), scoreAllMax (16), sampleSize (4), queueTurnover (5), waitWeight (0.5),
 * forgetMs (300), ratioWindow (30), tieTolerance (0.05), probeCostLimit (2), probeMode ('shadow'). The model's predict
 * function is a dependency (BalancerDeps.predict), not an option.
 * The heuristic's form and defaults were chosen on the simulator's public scenarios (bench/scenarios),
 * one configuration for all of them. Its formulas (S, L and the stall floor) are computed by pure
 * functions in signals.ts (serviceEstimateMs, builtinEstimateMs), because the learned model takes L as
 * an input: the router's and the simulator's training samples must carry the same figure.
 */

const D = SIGNAL_DEFAULTS;

/** Predictive's config (the options above), each with its bounds and default. */
export const PredictiveConfig = Type.Object(
  {
    exploration: Type.Number({ minimum: 0, maximum: 1, default: 0.05 }),
    failurePenaltyMs: Type.Number({ minimum: 0, default: DEFAULT_FAILURE_PENALTY_MS }),
    memoryMs: Type.Number({ minimum: 1, default: D.memoryMs }),
    hintTauMs: Type.Number({ minimum: 1, default: D.hintTauMs }),
    defaultLatencyMs: Type.Number({ minimum: 1e-3, default: D.defaultLatencyMs }),
    forgetMs: Type.Number({ minimum: 1, default: D.forgetMs }),
    ratioWindow: Type.Number({ minimum: 1, default: D.ratioWindow }),
    stalenessPenalty: Type.Number({ minimum: 0, default: D.stalenessPenalty }),
    priorWeight: Type.Number({ minimum: 1e-6, default: D.priorWeight }),
    cpuWeight: Type.Number({ minimum: 0, default: D.cpuWeight }),
    queueTurnover: Type.Number({ minimum: 1e-6, default: D.queueTurnover }),
    waitWeight: Type.Number({ minimum: 0, default: D.waitWeight }),
    scoreAllMax: Type.Number({ minimum: 1, default: 16 }),
    sampleSize: Type.Integer({ minimum: 2, maximum: 64, default: 4 }),
    tieTolerance: Type.Number({ minimum: 0, default: 0.05 }),
    probeCostLimit: Type.Number({ minimum: 0, default: 2 }),
    probeMode: Type.Union([Type.Literal('shadow'), Type.Literal('call')], { default: 'shadow' }),
  },
  { additionalProperties: false },
);
export type PredictiveConfig = Static<typeof PredictiveConfig>;

/** Exploration of a server we have no recent samples of runs at up to this many times the base rate. */
const STALE_BOOST = 4;

export class Predictive implements Balancer {
  readonly name = 'Predictive';
  /** This router's own figures of its endpoints: what it scores with and what it samples for training. */
  readonly signals: RouterSignals;
  private readonly exploration: number;
  private readonly predict: PredictFn | undefined;
  private readonly penaltyMs: number;
  private readonly scoreAllMax: number;
  private readonly sampleSize: number;
  private readonly tieTolerance: number;
  private readonly probeCostLimit: number;
  private readonly probeMode: 'shadow' | 'call';
  private readonly picked = new Int32Array(64);
  private scores = new Float64Array(64);
  private scored = new Int32Array(64);

  constructor(
    config: PredictiveConfig,
    private readonly deps: BalancerDeps,
  ) {
    this.exploration = config.exploration;
    this.predict = deps.predict;
    this.penaltyMs = config.failurePenaltyMs;
    this.signals = new RouterSignals(config);
    this.scoreAllMax = config.scoreAllMax;
    this.sampleSize = config.sampleSize;
    this.tieTolerance = config.tieTolerance;
    this.probeCostLimit = config.probeCostLimit;
    this.probeMode = config.probeMode;
  }

  pick(candidates: readonly Endpoint[], req: PickRequest): Endpoint {
    const n = candidates.length;
    const rnd = this.deps.random;
    if (n === 1) return this.track(candidates[0]!);
    const now = this.deps.clock.now();
    const b = this.signals.baselineMs(req, now);
    if (this.probeMode === 'call') {
      const ep = this.explore(candidates, b, now);
      if (ep) return this.track(ep);
    }
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

  /**
   * The endpoint to measure with a shadow copy of `req` (Balancer.probeTarget), by the exploration
   * rule (the header): never `picked`, which the client's own call measures. None in probeMode 'call'.
   */
  probeTarget(candidates: readonly Endpoint[], req: PickRequest, picked: Endpoint): Endpoint | undefined {
    if (this.probeMode !== 'shadow' || candidates.length < 2) return undefined;
    const now = this.deps.clock.now();
    const ep = this.explore(candidates, this.signals.baselineMs(req, now), now);
    return ep === picked ? undefined : ep;
  }

  onCallStarted(ep: Endpoint, req: PickRequest): void {
    this.signals.onCallStarted(ep, req, this.deps.clock.now());
  }

  onCallEnded(ep: Endpoint, req: PickRequest, outcome: CallOutcome): void {
    this.signals.onCallEnded(ep, req, outcome, this.deps.clock.now());
  }

  onEndpointRemoved(id: string): void {
    this.signals.onEndpointRemoved(id);
  }

  onEndpointReadmitted(id: string): void {
    this.signals.forgetFailures(id);
  }

  /** The score of `ep` for `req` (lower is better), as `pick` computes it; for tests and status. */
  score(
    ep: Endpoint,
    req: PickRequest,
    b = this.signals.baselineMs(req, this.deps.clock.now()),
    now = this.deps.clock.now(),
  ): number {
    // f carries the built-in estimate (signals.ts builtinEstimateMs, stall floor included): what this
    // policy scores with when no model answers, and what a model starts from when one does
    const f = this.signals.features(ep, req, b, now);
    const predicted = this.predict?.(ep, req, f);
    // the model's figure gets the same stall floor the built-in estimate already has
    const latency =
      predicted === undefined || !Number.isFinite(predicted)
        ? f.estimateMs
        : Math.max(predicted, stallFloorMs(f.oldestInflightAgeMs, f.serviceMs));
    return (1 - f.errorRate) * latency + f.errorRate * this.penaltyMs;
  }

  /** Fills and returns the (reused) feature object for `ep` and `req`. */
  features(ep: Endpoint, req: PickRequest, b: number, now: number): PredictiveFeatures {
    return this.signals.features(ep, req, b, now);
  }

  /**
   * What this policy knows of `ep` for `req` now: the inputs a training sample records at dispatch.
   * Take it before the call is counted against `ep` (as `pick` saw it).
   */
  dispatchFeatures(ep: Endpoint, req: PickRequest): PredictiveFeatures {
    return this.signals.dispatchFeatures(ep, req, this.deps.clock.now());
  }

  /**
   * Exploration (the header): with probability `exploration`, boosted for a server we have not heard
   * from lately, a uniformly random candidate to measure, or undefined. `b` is the call's baseline.
   */
  private explore(candidates: readonly Endpoint[], b: number, now: number): Endpoint | undefined {
    const rnd = this.deps.random;
    const explore = Math.min(1, STALE_BOOST * this.exploration);
    // Explore with cheap calls only: a short call tells as much about a server's speed as a long one
    // (ratios are normalised by method and payload), and a long call sent at random to a slow server
    // is a tail event (when it is a client's: on the mixed pool such calls were a fifth of those over
    // the p99), and a long probe takes as much of the server as a long call.
    if (!(this.exploration > 0 && b <= this.probeCostLimit * this.signals.typicalMs(now) && rnd() < explore))
      return undefined;
    // Explore a server only while none of our calls is open there (one probe at a time: a stalled
    // server does not collect them), and hardly ever one we know is failing, where a call costs the
    // deadline; its failure rate decays and the plain score tries it again in time.
    // The rate grows with how stale our own figures for it are (up to STALE_BOOST × for one we have
    // not heard from in a memoryMs): a server we stopped sending to is known only by old samples and
    // a lagging operator figure, and only a probe shows it has recovered. One we use stays at the
    // base rate.
    const ep = candidates[randomIndex(rnd, candidates.length)]!;
    const boost = 1 + (STALE_BOOST - 1) * this.signals.staleness(ep, now);
    const chosen =
      rnd() * explore < Math.min(1, this.exploration * boost) &&
      ep.inflight === 0 &&
      (1 - this.signals.failureRate(ep, now)) ** 20 > rnd();
    return chosen ? ep : undefined;
  }

  private taken(i: number, k: number): boolean {
    for (let j = 0; j < k; j++) if (this.picked[j] === i) return true;
    return false;
  }

  private track(ep: Endpoint): Endpoint {
    this.signals.track(ep, this.deps.clock.now());
    return ep;
  }
}

registerBalancer('Predictive', PredictiveConfig, (config, deps) => new Predictive(config, deps));
