import { pino } from 'pino';
import { Registry } from 'prom-client';
import { RoutingState } from '../../../src/control/routing-state.js';
import { P99, scoredSamples } from '../../../src/model/calibrate.js';
import { loadModel } from '../../../src/model/artifact.js';
import { sigmaOf } from '../../../src/model/quantiles.js';
import type { TrainingSample } from '../../../src/model/sample.js';
import { ModelManager } from '../../../src/operator/model-manager.js';
import { seededRandom } from '../../../src/util/clock.js';

/** Standard normal (Box–Muller). */
const gaussian = (rnd: () => number) => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());

/**
 * Live calls whose latency spreads `spread` times wider (in ln units) than the model's σ says, with
 * Student-t (3 d.o.f.) tails: traffic unlike the simulator's, where the shipped calibration misses.
 */
async function liveSamples(n: number, spread: number, seed: number): Promise<TrainingSample[]> {
  const model = await loadModel('models/latency');
  const rnd = seededRandom(seed);
  const base: TrainingSample[] = Array.from({ length: n }, () => {
    const est = 2 + 40 * rnd();
    return {
      inflight: Math.floor(4 * rnd()),
      recentLatencyMs: 0.7 + 0.6 * rnd(),
      payloadBytes: Math.floor(8192 * rnd()),
      methodCostMs: est,
      errorRate: 0,
      oldestInflightMs: 0,
      telemetryAgeMs: 1000,
      builtinEstimateMs: est,
      latencyMs: 0,
      failed: false,
    };
  });
  return scoredSamples(model, base).map((s, i) => {
    const chi = gaussian(rnd) ** 2 + gaussian(rnd) ** 2 + gaussian(rnd) ** 2;
    const t = gaussian(rnd) / Math.sqrt(chi / 3);
    return { ...base[i]!, latencyMs: Math.exp(s.logLatency + spread * sigmaOf(s.logLatency, s.logP90) * t) };
  });
}

test('live p99 coverage is measured on samples since install, and a miss is recalibrated on live traffic', async () => {
  const registry = new Registry();
  const routing = new RoutingState(1);
  const m = new ModelManager(routing, pino({ level: 'silent' }), registry);
  await m.loadDefault('models/latency');
  const shipped = m.status.version;
  expect(m.measureLiveCoverage()).toBeUndefined();
  m.addSamples(await liveSamples(4000, 3, 1));
  const before = m.measureLiveCoverage();
  expect(before?.samples).toBe(4000);
  expect(before!.coverage).toBeLessThan(0.97);
  expect(m.status.p99CoverageLive).toBeCloseTo(before!.coverage, 3);
  expect(await registry.getSingleMetricAsString('sibyl_model_p99_coverage')).toMatch(/set="live"/);

  const why = m.recalibrate();
  expect(why).toMatch(/recalibrated on 4000 live samples: p99 coverage .* → .* on the half not used to fit/);
  // a new version (routers reload it), the live figures start again
  expect(m.status.version).not.toBe(shipped);
  expect(routing.model?.version).toBe(m.status.version);
  expect(m.status.p99CoverageLive).toBeUndefined();
  // fresh traffic of the same kind is now covered near the goal
  const later = await liveSamples(20_000, 3, 2);
  m.addSamples(later);
  const after = m.measureLiveCoverage();
  expect(Math.abs(after!.coverage - P99)).toBeLessThan(0.005);
  // within tolerance: nothing to do
  expect(m.recalibrate()).toBeUndefined();
});

test('the shipped model carries a calibration, measured on the half of its holdout it was not fitted on', async () => {
  const model = await loadModel('models/latency');
  expect(model.calibration?.source).toBe('holdout');
  expect(model.calibration!.samples).toBeGreaterThanOrEqual(1000);
  expect(Math.abs(model.metrics!.p99Coverage! - P99)).toBeLessThanOrEqual(0.005);
});
