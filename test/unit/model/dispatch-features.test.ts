import { DEFAULT_FAILURE_PENALTY_MS } from '../../../src/balancer/common.js';
import type { Predictive } from '../../../src/balancer/predictive.js';
import type { FeatureInput } from '../../../src/model/features.js';
import { dispatchSample } from '../../../src/model/dispatch.js';
import { simulate, type RunObserver } from '../../../src/tools/sim/engine.js';
import { SampleCollector } from '../../../src/tools/sim/samples.js';
import { scenario } from '../tools/sim/helpers.js';

/**
 * The model must be asked about exactly what it was trained on (issue 7). The router records a training
 * sample with dispatchSample (src/router/control-link.ts) from the Predictive policy it routes with; the
 * simulator's collector (the default model's training data) keeps its own RouterSignals fed with the
 * calls, whatever the policy. Here Predictive places the calls of a run with errors, a slowdown, two
 * methods, payloads and lagged telemetry, and at every pick both must give the same inputs — the
 * built-in estimate (features version 3) among them, which must also be the very figure the policy
 * scored the endpoint with.
 */
describe('dispatch features: router and simulator', () => {
  const s = scenario({
    routers: 3,
    load: { utilization: 0.7 },
    methods: [
      { name: '/t.S/Get', share: 0.8, costMs: 2, payloadBytes: [200, 2000] },
      { name: '/t.S/Put', share: 0.2, costMs: 20, payloadBytes: [1000, 50000], costPerKiBMs: 0.2 },
    ],
    servers: [
      { count: 3, speed: 1, concurrency: 2 },
      { count: 2, speed: 0.5, concurrency: 2, antagonistCpu: 0.5 },
    ],
    events: [
      { server: 1, fromS: 2, toS: 5, slowdown: 8 },
      { server: 3, fromS: 4, toS: 7, errorRate: 0.5, errorLatencyMs: 1 },
      { server: 0, pauseEveryS: 3, pauseMs: 150 },
    ],
  });

  function run(seed: number): { router: FeatureInput[]; sim: FeatureInput[]; scored: number[][] } {
    const collector = new SampleCollector(s, Number.MAX_SAFE_INTEGER, 0, 1, seed);
    const router: FeatureInput[] = [];
    const scored: number[][] = []; // [the policy's score, the score rebuilt from the sample's estimate]
    const observer: RunObserver = {
      done: false,
      onPick(r, ep, c, now) {
        const x = dispatchSample(r.balancer, ep, c);
        if (!x) throw new Error('Predictive gives dispatch samples');
        router.push({ ...x });
        const p = r.balancer as Predictive;
        const e = x.errorRate;
        scored.push([p.score(ep, c), (1 - e) * x.builtinEstimateMs! + e * DEFAULT_FAILURE_PENALTY_MS]);
        collector.onPick(r, ep, c, now);
      },
      onDispatch: (r, ep, c, now) => collector.onDispatch(r, ep, c, now),
      onEnd: (r, c, ok, latencyMs, now) => collector.onEnd(r, c, ok, latencyMs, now),
    };
    simulate(s, { policy: 'Predictive', seed, observer });
    const sim = collector.samples.map(({ latencyMs: _l, failed: _f, ...input }) => input);
    return { router, sim, scored };
  }

  it('are identical at every pick', () => {
    for (const seed of [1, 2]) {
      const { router, sim, scored } = run(seed);
      expect(router.length).toBeGreaterThan(1000);
      expect(sim).toEqual(router);
      // and the run exercised every input, so equal is not trivially equal
      expect(router.some((x) => x.inflight > 0 && x.oldestInflightMs > 0)).toBe(true);
      expect(router.some((x) => x.errorRate > 0.05)).toBe(true);
      expect(router.some((x) => x.recentLatencyMs > 2)).toBe(true);
      expect(router.some((x) => x.queueLength !== undefined && x.cpu !== undefined)).toBe(true);
      expect(new Set(router.map((x) => Math.round(x.methodCostMs))).size).toBeGreaterThan(3);
      // the estimate: what the policy scored with, and it varied beyond the baseline
      for (const [score, rebuilt] of scored) expect(score).toBeCloseTo(rebuilt!, 9);
      expect(router.every((x) => x.builtinEstimateMs! > 0)).toBe(true);
      expect(router.some((x) => x.builtinEstimateMs! > 3 * x.methodCostMs)).toBe(true);
    }
  });

  it('are taken before the call is counted on the endpoint', () => {
    const { router } = run(3);
    // the first pick of a run: nothing in flight anywhere, no figures yet
    expect(router[0]).toMatchObject({ inflight: 0, oldestInflightMs: 0, recentLatencyMs: 1, errorRate: 0 });
  });

  it('are none for a policy that keeps no such figures', () => {
    const ep = { id: 'a', address: 'a', inflight: 0 };
    let got: unknown = 'unset';
    simulate(scenario({ durationS: 2 }), {
      policy: 'LeastRequest',
      observer: {
        done: false,
        onPick(r) {
          got = dispatchSample(r.balancer, ep, { method: '/t.S/Get', payloadBytes: 0 });
        },
        onDispatch() {},
        onEnd() {},
      },
    });
    expect(got).toBeUndefined();
  });
});
