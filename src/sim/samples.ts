import { decay } from '../balancer/common.js';
import type { TrainingSample } from '../model/sample.js';
import type { SimCall } from './call.js';
import { simulate, type RunObserver } from './engine.js';
import { stream } from './random.js';
import type { SimEndpoint, SimRouter } from './router.js';
import { offeredRps, type Scenario } from './scenario.js';

/**
 * Training samples from the simulator (DESIGN.md §6: the default model is trained on simulator data).
 * Each sample is what one router knew about the endpoint it chose when it dispatched a call, from its
 * own observations and the operator's lagged telemetry only, and the latency it then saw (a failure at
 * the deadline). The router-side figures are kept here, apart from the policy, so samples mean the same
 * whichever policy places the calls:
 *
 * - methodCostMs: per router and method, the mean latency of successful calls dispatched to an endpoint
 *   where the router had nothing else in flight (its best view of an idle server), decayed over
 *   MEMORY_MS; before any, the method's mean latency so far;
 * - recentLatencyMs: per router and endpoint, the decayed mean of latency ÷ methodCostMs over successful
 *   calls (1 = typical), NaN-free: 1 before any call;
 * - errorRate: per router and endpoint, decayed failures ÷ (calls + 1), shrunk towards the fleet-wide
 *   rate the operator pushed;
 * - inflight, oldestInflightMs: this router's own calls to the endpoint at dispatch, this one excluded;
 * - cpu, queueLength, telemetryAgeMs: the operator's last push (telemetryAgeMs Infinity before any).
 *
 * Calls are sampled uniformly over the run after warm-up, at the rate that yields about `maxSamples`.
 */
export interface CollectOptions {
  seed: number;
  policy: string;
  maxSamples: number;
  /** Passed to the policy, as in `simulate`. */
  balancerOptions?: Record<string, unknown>;
}

const MEMORY_MS = 5000;

interface Ewma {
  sum: number;
  weight: number;
  atMs: number;
}

const ewma = (): Ewma => ({ sum: 0, weight: 0, atMs: 0 });

function add(e: Ewma, x: number, now: number): void {
  const d = decay(now - e.atMs, MEMORY_MS);
  e.sum = e.sum * d + x;
  e.weight = e.weight * d + 1;
  e.atMs = now;
}

function mean(e: Ewma): number {
  return e.weight > 0 ? e.sum / e.weight : NaN;
}

class SampleCollector implements RunObserver {
  readonly samples: TrainingSample[] = [];
  private readonly pending = new Map<number, { sample?: TrainingSample; idle: boolean }>();
  private open = 0;
  private readonly idleCost: Ewma[][]; // [router][method]
  private readonly anyCost: Ewma[][];
  private readonly ratio: Ewma[][]; // [router][server]
  private readonly calls: Ewma[][];
  private readonly fails: Ewma[][];
  private readonly pick: () => number;
  private next = 0;

  constructor(
    scenario: Scenario,
    servers: number,
    private readonly maxSamples: number,
    private readonly fromMs: number,
    private readonly rate: number,
    seed: number,
  ) {
    const grid = (n: number) =>
      Array.from({ length: scenario.routers }, () => Array.from({ length: n }, ewma));
    this.idleCost = grid(scenario.methods.length);
    this.anyCost = grid(scenario.methods.length);
    this.ratio = grid(servers);
    this.calls = grid(servers);
    this.fails = grid(servers);
    this.pick = stream(seed, 'samples');
  }

  get done(): boolean {
    return this.samples.length >= this.maxSamples && this.open === 0;
  }

  private methodCost(router: number, method: number): number {
    const idle = mean(this.idleCost[router]![method]!);
    if (!Number.isNaN(idle)) return idle;
    const any = mean(this.anyCost[router]![method]!);
    return Number.isNaN(any) ? 1 : any;
  }

  onDispatch(router: SimRouter, ep: SimEndpoint, c: SimCall, now: number): void {
    const inflight = ep.inflight - 1;
    const idle = inflight === 0;
    if (now < this.fromMs || this.samples.length >= this.maxSamples || this.pick() >= this.rate) {
      if (idle && this.samples.length < this.maxSamples) this.pending.set(c.serial, { idle });
      return;
    }
    const r = router.index;
    const s = ep.index;
    const cost = this.methodCost(r, c.methodIndex);
    const ratio = mean(this.ratio[r]![s]!);
    const calls = this.calls[r]![s]!;
    const fails = this.fails[r]![s]!;
    const d = decay(now - calls.atMs, MEMORY_MS);
    const fd = decay(now - fails.atMs, MEMORY_MS);
    const h = ep.hints;
    const fresh = h?.atMs !== undefined ? decay(now - h.atMs, MEMORY_MS * 2) : 0;
    const sample: TrainingSample = {
      inflight,
      recentLatencyMs: Number.isNaN(ratio) ? 1 : ratio,
      payloadBytes: c.payloadBytes,
      methodCostMs: cost,
      errorRate: (fails.sum * fd + fresh * (h?.errorRate ?? 0)) / (calls.sum * d + 1),
      oldestInflightMs:
        inflight > 0 && ep.oldestInflightStartMs !== undefined ? now - ep.oldestInflightStartMs : 0,
      telemetryAgeMs: h?.atMs !== undefined ? now - h.atMs : Infinity,
      latencyMs: 0,
      failed: false,
    };
    if (ep.load?.cpu !== undefined) sample.cpu = ep.load.cpu;
    if (h?.queueLength !== undefined) sample.queueLength = h.queueLength;
    this.samples.push(sample);
    this.pending.set(c.serial, { sample, idle });
    this.open++;
  }

  onEnd(router: SimRouter, c: SimCall, ok: boolean, latencyMs: number, now: number): void {
    const r = router.index;
    const s = c.server;
    const p = this.pending.get(c.serial);
    if (p) {
      this.pending.delete(c.serial);
      if (p.sample) {
        this.open--;
        p.sample.latencyMs = latencyMs;
        p.sample.failed = !ok;
      }
    }
    add(this.calls[r]![s]!, 1, now);
    add(this.fails[r]![s]!, ok ? 0 : 1, now);
    if (!ok) return;
    add(this.anyCost[r]![c.methodIndex]!, latencyMs, now);
    if (p?.idle) add(this.idleCost[r]![c.methodIndex]!, latencyMs, now);
    add(this.ratio[r]![s]!, latencyMs / this.methodCost(r, c.methodIndex), now);
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
  const servers = scenario.servers.reduce((n, g) => n + g.count, 0);
  const collector = new SampleCollector(scenario, servers, options.maxSamples, fromMs, rate, options.seed);
  simulate(scenario, {
    policy: options.policy,
    seed: options.seed,
    balancerOptions: options.balancerOptions,
    observer: collector,
  });
  return collector.samples.filter((s) => s.latencyMs > 0 || s.failed);
}
