import { RouterSignals } from '../../balancer/signals.js';
import type { CallOutcome } from '../../balancer/types.js';
import { dispatchInput } from '../../model/features.js';
import type { TrainingSample } from '../../model/sample.js';
import type { SimCall } from './call.js';
import { simulate, type RunObserver } from './engine.js';
import { stream } from './random.js';
import type { SimEndpoint, SimRouter } from './router.js';
import { offeredRps, type Scenario } from './scenario.js';

/**
 * Training samples from the simulator (docs/architecture.md, "Model": the default model is trained on simulator data).
 * Each sample is what one router knew about the endpoint it chose when it dispatched a call, from its
 * own observations and the operator's lagged telemetry only, and the latency it then saw (a failure at
 * the deadline).
 *
 * The figures are the router's own, computed by the same code: each simulated router gets a
 * RouterSignals (src/balancer/signals.ts, what the Predictive policy keeps and the real router samples)
 * fed with every call it starts and ends, whichever policy places the calls, and a sample is
 * `dispatchInput(signals.dispatchFeatures(ep, call))` taken at the pick, before the call is counted on
 * the endpoint — as src/router/control-link.ts records it in production. So the model is trained on
 * exactly what it is asked about (test/unit/model/dispatch-features.test.ts).
 *
 * Calls are sampled uniformly over the run after warm-up, at the rate that yields about `maxSamples`.
 */
export interface CollectOptions {
  seed: number;
  policy: string;
  maxSamples: number;
  /** The policy's config, as in `simulate`. */
  balancerConfig?: Record<string, unknown>;
}

/** Records training samples of a run (a RunObserver); `rate` is the share of calls sampled. */
export class SampleCollector implements RunObserver {
  readonly samples: TrainingSample[] = [];
  private readonly pending = new Map<number, TrainingSample>();
  private readonly signals: RouterSignals[];
  private readonly pick: () => number;
  private readonly outcome: CallOutcome = { ok: true, code: 0, latencyMs: 0, startedAtMs: 0 };

  constructor(
    scenario: Scenario,
    private readonly maxSamples: number,
    private readonly fromMs: number,
    private readonly rate: number,
    seed: number,
  ) {
    this.signals = Array.from({ length: scenario.routers }, () => new RouterSignals());
    this.pick = stream(seed, 'samples');
  }

  get done(): boolean {
    return this.samples.length >= this.maxSamples && this.pending.size === 0;
  }

  onPick(router: SimRouter, ep: SimEndpoint, c: SimCall, now: number): void {
    if (now < this.fromMs || this.samples.length >= this.maxSamples || this.pick() >= this.rate) return;
    const input = dispatchInput(this.signals[router.index]!.dispatchFeatures(ep, c, now));
    const sample: TrainingSample = { ...input, latencyMs: 0, failed: false };
    for (const k of ['cpu', 'memory', 'queueLength'] as const) if (sample[k] === undefined) delete sample[k];
    this.samples.push(sample);
    this.pending.set(c.serial, sample);
  }

  onDispatch(router: SimRouter, ep: SimEndpoint, c: SimCall, now: number): void {
    this.signals[router.index]!.onCallStarted(ep, c, now);
  }

  onEnd(router: SimRouter, c: SimCall, ok: boolean, latencyMs: number, now: number, censored = false): void {
    const sample = this.pending.get(c.serial);
    if (sample) {
      this.pending.delete(c.serial);
      if (censored) {
        // a try the router cut (CallOutcome.censored): its latency is a lower bound, not a label
        // (the router's collector drops it too, src/router/load-collector.ts)
        this.samples.splice(this.samples.indexOf(sample), 1);
      } else {
        sample.latencyMs = latencyMs;
        sample.failed = !ok;
      }
    }
    const o = this.outcome;
    o.ok = ok;
    o.latencyMs = latencyMs;
    o.startedAtMs = c.startMs;
    if (censored) o.censored = true;
    else delete o.censored;
    this.signals[router.index]!.onCallEnded(router.endpoints[c.server]!, c, o, now);
  }
}

/**
 * Runs `scenario` with `policy` at `seed` and returns up to `maxSamples` training samples, spread
 * uniformly over the run after warm-up. The run stops once enough samples have their outcomes.
 */
export function collectSamples(scenario: Scenario, options: CollectOptions): TrainingSample[] {
  const fromMs = scenario.warmupS * 1000;
  let expected = 0;
  for (let t = fromMs; t < scenario.durationS * 1000; t += 1000) expected += offeredRps(scenario, t);
  const rate = Math.min(1, options.maxSamples / Math.max(1, expected));
  const collector = new SampleCollector(scenario, options.maxSamples, fromMs, rate, options.seed);
  simulate(scenario, {
    policy: options.policy,
    seed: options.seed,
    balancerConfig: options.balancerConfig,
    observer: collector,
  });
  return collector.samples.filter((s) => s.latencyMs > 0 || s.failed);
}
