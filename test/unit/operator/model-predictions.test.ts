import { pino } from 'pino';
import { Registry } from 'prom-client';
import { RoutingState } from '../../../src/control/routing-state.js';
import { blendPrediction } from '../../../src/model/predictor.js';
import { ModelManager } from '../../../src/operator/model-manager.js';
import type { EndpointView } from '../../../src/telemetry/fleet.js';

const view = (p50Ms: number, inflight = 1): EndpointView => ({
  calls: 500,
  failures: 0,
  errorRate: 0,
  p50Ms,
  p99Ms: p50Ms * 2,
  meanMs: p50Ms * 1.1,
  inflight,
  routers: 2,
  failingRouters: 0,
  openBreakers: 0,
  ageMs: 1000,
});

test("the operator's per-endpoint predictions (status, weights) stay near what the fleet observes and keep its order", async () => {
  const m = new ModelManager(new RoutingState(1), pino({ level: 'silent' }), new Registry());
  await m.loadDefault('models/latency');
  expect(m.ready).toBe(true);
  // The demo's pool: five endpoints near 5 ms and one at 128 ms (the residual model alone, unblended,
  // once predicted the slow one at 3.6 ms and called it the best).
  const fast = m.predict('ns/p', 'a', view(5), 5.5) as { latencyMs: number };
  const slow = m.predict('ns/p', 'b', view(128), 5.5) as { latencyMs: number };
  expect(slow.latencyMs).toBeGreaterThan(fast.latencyMs * 5);
  // Blended with a quarter of the model's correction, at most 32× away: within 32^0.25 ≈ 2.4× of p50.
  for (const [p, p50] of [
    [fast, 5],
    [slow, 128],
  ] as const) {
    expect(p.latencyMs).toBeGreaterThan(p50 / 2.4);
    expect(p.latencyMs).toBeLessThan(p50 * 2.4);
  }
});

test('blendPrediction: a quarter of the correction, nothing outside the training range or beyond the bound', () => {
  const b = { seenLo: 1, seenHi: 1000, maxCorrection: 32, trust: 0.25 };
  expect(blendPrediction(100, 1600, b)).toBeCloseTo(200, 9); // 100 · 16^0.25
  expect(blendPrediction(100, 100 * 33, b)).toBeUndefined(); // beyond 32×
  expect(blendPrediction(100, 100 / 33, b)).toBeUndefined();
  expect(blendPrediction(5000, 5000, b)).toBeUndefined(); // estimate never seen in training
  expect(blendPrediction(NaN, 10, b)).toBeUndefined();
  expect(blendPrediction(100, 50, { ...b, trust: 1 })).toBe(50);
});

test("a method's p99 from the model: above its median, rising with the method's cost, none without a model", async () => {
  const m = new ModelManager(new RoutingState(1), pino({ level: 'silent' }), new Registry());
  const v = view(5);
  expect(m.methodQuantileMs(v, 5, 5, 0.99)).toBeUndefined();
  await m.loadDefault('models/latency');
  const p50 = m.methodQuantileMs(v, 5, 5, 0.5) as number;
  const p99 = m.methodQuantileMs(v, 5, 5, 0.99) as number;
  const costly = m.methodQuantileMs(v, 5, 50, 0.99) as number;
  console.log(
    `model, a 5 ms method: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; a 50 ms one: p99 ${costly.toFixed(1)} ms`,
  );
  expect(p99).toBeGreaterThan(p50);
  expect(costly).toBeGreaterThan(p99);
  expect(m.methodQuantileMs(v, 5, 0, 0.99)).toBeUndefined();
  expect(m.methodQuantileMs(v, 5, 5, 1)).toBeUndefined();
});
