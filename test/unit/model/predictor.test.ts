import { Predictive, type PredictiveFeatures } from '../../../src/balancer/predictive.js';
import type { Endpoint, PickRequest } from '../../../src/balancer/types.js';
import { ForwardModel } from '../../../src/model/forward.js';
import type { LatencyModel } from '../../../src/model/model.js';
import { createPredictor, featureInputFrom, latencyEstimateMs } from '../../../src/model/predictor.js';
import { trainModel } from '../../../src/model/train.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { syntheticSamples } from './synthetic.js';

const req: PickRequest = { method: '/t.S/Get', payloadBytes: 1024 };

function features(over: Partial<PredictiveFeatures> = {}): PredictiveFeatures {
  return {
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
    memory: 0.4,
    ...over,
  };
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
    const input = featureInputFrom(features({ latencyRatio: NaN, hintAgeMs: Infinity, cpu: NaN }));
    expect(input).toEqual({
      cpu: NaN,
      memory: 0.4,
      inflight: 0,
      queueLength: 0,
      recentLatencyMs: NaN,
      payloadBytes: 1024,
      methodCostMs: 2,
      errorRate: 0,
      oldestInflightMs: 0,
      telemetryAgeMs: Infinity,
    });
  });

  it('predicts ms that follow the learnt function: more in flight, dearer method → slower', () => {
    const predict = createPredictor(model);
    const ep: Endpoint = { id: 'a', address: 'a', inflight: 0 };
    const idle = predict(ep, req, features())!;
    const busy = predict(ep, req, features({ inflight: 6, queueLength: 24, latencyRatio: 5 }))!;
    const dear = predict(ep, req, features({ baselineMs: 20 }))!;
    // synthetic truth: ≈2 ms idle, ×7 with 6 in flight, ×10 for the 20 ms method (plus its payload cost)
    expect(idle).toBeGreaterThan(1);
    expect(idle).toBeLessThan(4);
    expect(busy / idle).toBeGreaterThan(4);
    expect(dear / idle).toBeGreaterThan(6);
    const median = createPredictor(model, { estimate: 'median' })(ep, req, features())!;
    const p90 = createPredictor(new ForwardModel(model), { estimate: 'p90' })(ep, req, features())!;
    expect(median).toBeLessThan(idle);
    expect(p90).toBeGreaterThan(idle);
  });

  it('reads two heads as a log-normal', () => {
    expect(latencyEstimateMs(0, NaN)).toBe(1);
    expect(latencyEstimateMs(0, 1.2815515655446004, 'mean')).toBeCloseTo(Math.exp(0.5), 12);
    expect(latencyEstimateMs(0, 1, 'p90')).toBeCloseTo(Math.E, 12);
    expect(latencyEstimateMs(Infinity, Infinity)).toBeUndefined();
    expect(latencyEstimateMs(50, 51, 'median', 1000)).toBe(1000);
  });

  it('drives the Predictive balancer through options.predict', () => {
    const predict = createPredictor(model);
    const calls: number[] = [];
    const b = new Predictive(
      { clock: new ManualClock(1000), random: seededRandom(1) },
      {
        exploration: 0,
        predict: (ep: Endpoint, r: PickRequest, f: PredictiveFeatures) => {
          const ms = predict(ep, r, f);
          calls.push(ms!);
          return ms;
        },
      },
    );
    const busy: Endpoint = { id: 'busy', address: 'busy', inflight: 5 };
    const idle: Endpoint = { id: 'idle', address: 'idle', inflight: 0 };
    expect(b.pick([busy, idle], req).id).toBe('idle');
    expect(calls).toHaveLength(2);
    expect(calls.every((ms) => Number.isFinite(ms) && ms > 0)).toBe(true);
  });
});
