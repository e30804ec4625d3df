import type { PredictiveFeatures } from '../../../src/balancer/predictive.js';
import { createBalancer } from '../../../src/balancer/index.js';
import { SIGNAL_DEFAULTS, builtinEstimateMs, serviceEstimateMs } from '../../../src/balancer/signals.js';
import type { Endpoint, PickRequest } from '../../../src/balancer/types.js';
import { ForwardModel } from '../../../src/model/forward.js';
import type { LatencyModel } from '../../../src/model/model.js';
import { dispatchInput } from '../../../src/model/features.js';
import { createPredictor, latencyEstimateMs } from '../../../src/model/predictor.js';
import { trainModel } from '../../../src/model/train.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { syntheticSamples } from './synthetic.js';

const req: PickRequest = { method: '/t.S/Get', payloadBytes: 1024 };

/** Features as RouterSignals fills them: the built-in estimate from the rest (unless given). */
function features(over: Partial<PredictiveFeatures> = {}): PredictiveFeatures {
  const f: PredictiveFeatures = {
    baselineMs: 2,
    payloadKiB: 1,
    latencyRatio: 1,
    samples: 5,
    inflight: 0,
    oldestInflightAgeMs: 0,
    errorRate: 0,
    hintLatencyMs: NaN,
    hintAgeMs: 500,
    hintFreshness: 0.9,
    queueLength: 0,
    cpu: 0.3,
    reportedCpu: 0.3,
    memory: 0.4,
    typicalMs: 2,
    aheadMs: 0,
    serviceMs: NaN,
    estimateMs: NaN,
    ...over,
  };
  if (over.serviceMs === undefined) f.serviceMs = serviceEstimateMs(f, SIGNAL_DEFAULTS);
  if (over.estimateMs === undefined) f.estimateMs = builtinEstimateMs(f, SIGNAL_DEFAULTS);
  return f;
}

describe('createPredictor', () => {
  let model: LatencyModel;
  beforeAll(async () => {
    model = (
      await trainModel(syntheticSamples(1500, 31), {
        backend: 'wasm',
        epochs: 10,
        batchSize: 128,
        learningRate: 0.005,
      })
    ).model;
  });

  it("maps the balancer's signals onto the sample contract", () => {
    const f = features({
      latencyRatio: NaN,
      hintAgeMs: Infinity,
      cpu: NaN,
      reportedCpu: NaN,
      queueLength: NaN,
    });
    expect(dispatchInput(f)).toEqual({
      cpu: undefined,
      memory: 0.4,
      inflight: 0,
      queueLength: undefined,
      recentLatencyMs: 1, // "typical" before any call
      payloadBytes: 1024,
      methodCostMs: 2,
      errorRate: 0,
      oldestInflightMs: 0,
      telemetryAgeMs: Infinity,
      builtinEstimateMs: f.estimateMs,
    });
    expect(f.estimateMs).toBeGreaterThan(0);
    // the reported cpu, not the age-faded one the heuristic uses
    expect(dispatchInput(features({ cpu: 0.1, reportedCpu: 0.9 }))).toMatchObject({
      cpu: 0.9,
      queueLength: 0,
    });
  });

  it('predicts ms that follow the learnt function: more in flight, dearer method → slower', () => {
    const predict = createPredictor(model, { maxCorrection: Infinity });
    const ep: Endpoint = { id: 'a', address: 'a', inflight: 0, load: { cpu: 0.3, memory: 0.4, atMs: 0 } };
    const idle = predict(ep, req, features())!;
    const busy = predict(ep, req, features({ inflight: 6, queueLength: 24, latencyRatio: 5, aheadMs: 12 }))!;
    const dear = predict(ep, req, features({ baselineMs: 20 }))!;
    // synthetic truth: ≈2 ms idle, ×7 with 6 in flight, ×10 for the 20 ms method (plus its payload cost)
    expect(idle).toBeGreaterThan(1);
    expect(idle).toBeLessThan(4);
    expect(busy / idle).toBeGreaterThan(4);
    expect(dear / idle).toBeGreaterThan(5);
    const absolute = (estimate: 'mean' | 'median' | 'p90') =>
      createPredictor(new ForwardModel(model), { estimate, maxCorrection: Infinity })(ep, req, features())!;
    expect(absolute('median')).toBeLessThan(absolute('mean'));
    expect(absolute('p90')).toBeGreaterThan(absolute('mean'));
  });

  it('corrects the built-in estimate, and falls back to it when the correction is too large', () => {
    const ep: Endpoint = { id: 'a', address: 'a', inflight: 0 };
    const free = createPredictor(model, { maxCorrection: Infinity, trust: 1 });
    const f = features({ inflight: 2, aheadMs: 4 });
    const ms = free(ep, req, f)!;
    const factor = ms / f.estimateMs;
    // the prediction scales with the estimate it corrects (the network sees it clamped to its range)
    const at = (estimateMs: number) => free(ep, req, { ...f, estimateMs })!;
    expect(at(2 * f.estimateMs) / at(f.estimateMs)).toBeGreaterThan(1.2);
    // a limit the correction is within changes nothing; one it exceeds gives the estimate back
    const limit = Math.max(factor, 1 / factor);
    const capped = (maxCorrection: number) => createPredictor(model, { maxCorrection, trust: 1 })(ep, req, f);
    expect(capped(limit * 1.01)).toBeCloseTo(ms, 9);
    if (limit > 1.01) expect(capped(limit / 1.01)).toBeUndefined();
    expect(() => createPredictor(model, { maxCorrection: 0.5 })).toThrow(/maxCorrection/);
    // by default only part of the correction is applied: estimate · (model / estimate)^trust
    const blended = createPredictor(model, { maxCorrection: Infinity, trust: 0.25 })(ep, req, f)!;
    expect(blended).toBeCloseTo(f.estimateMs * factor ** 0.25, 9);
    expect(createPredictor(model, { maxCorrection: Infinity, trust: 0 })(ep, req, f)).toBeCloseTo(
      f.estimateMs,
      9,
    );
    expect(() => createPredictor(model, { trust: 2 })).toThrow(/trust/);
    // an estimate outside the range the model was trained on: the balancer's own figure
    expect(free(ep, req, { ...f, estimateMs: 1e9 })).toBeUndefined();
    // no estimate to correct: no prediction (the balancer uses its own)
    expect(free(ep, req, { ...f, estimateMs: NaN })).toBeUndefined();
  });

  it('reads two heads as a log-normal', () => {
    expect(latencyEstimateMs(0, NaN)).toBe(1);
    expect(latencyEstimateMs(0, 1.2815515655446004, 'mean')).toBeCloseTo(Math.exp(0.5), 12);
    expect(latencyEstimateMs(0, 1, 'p90')).toBeCloseTo(Math.E, 12);
    expect(latencyEstimateMs(Infinity, Infinity)).toBeUndefined();
    expect(latencyEstimateMs(50, 51, 'median', 1000)).toBe(1000);
  });

  it('drives the Predictive balancer through its predict dependency', () => {
    const predict = createPredictor(model);
    const calls: number[] = [];
    const b = createBalancer(
      'Predictive',
      {
        clock: new ManualClock(1000),
        random: seededRandom(1),
        predict: (ep: Endpoint, r: PickRequest, f: PredictiveFeatures) => {
          const ms = predict(ep, r, f);
          calls.push(ms!);
          return ms;
        },
      },
      { exploration: 0 },
    );
    const busy: Endpoint = { id: 'busy', address: 'busy', inflight: 5 };
    const idle: Endpoint = { id: 'idle', address: 'idle', inflight: 0 };
    expect(b.pick([busy, idle], req).id).toBe('idle');
    expect(calls).toHaveLength(2);
    expect(calls.every((ms) => Number.isFinite(ms) && ms > 0)).toBe(true);
  });
});
