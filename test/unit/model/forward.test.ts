import {
  formatForwardRows,
  randomFeatures,
  runForwardBench,
  untrainedModel,
} from '../../../src/tools/bench/predict-cost.js';
import { FEATURE_COUNT, RESIDUAL_INDEX, dispatchInput, featurizeInto } from '../../../src/model/features.js';
import { ForwardModel, softplus } from '../../../src/model/forward.js';
import type { LatencyModel } from '../../../src/model/model.js';
import { tfPredict, trainModel } from '../../../src/model/train.js';
import { initTf } from '../../../src/model/tf.js';
import { seededRandom } from '../../../src/util/clock.js';
import { syntheticSamples } from './synthetic.js';

/** 1,000 raw vectors: plausible endpoints (with missing figures) and wild ones. */
function randomVectors(n: number, seed: number): Float64Array {
  const rnd = seededRandom(seed);
  const out = new Float64Array(n * FEATURE_COUNT);
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) featurizeInto(dispatchInput(randomFeatures(rnd)), out, i * FEATURE_COUNT);
    else
      for (let j = 0; j < FEATURE_COUNT; j++)
        // the estimate a residual model corrects is always known (features.ts falls back to one)
        out[i * FEATURE_COUNT + j] = rnd() < 0.1 && j !== RESIDUAL_INDEX ? NaN : (rnd() - 0.5) * 20;
  }
  return out;
}

function maxDiff(model: LatencyModel, tf: Float64Array, raw: Float64Array, n: number): number {
  const typed = new ForwardModel(model).predictBatch(raw, n);
  let max = 0;
  for (let i = 0; i < 2 * n; i++) {
    const a = typed[i] as number;
    const b = tf[i] as number;
    // no estimate to correct (a missing residual input): both give NaN, which is agreement
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    max = Math.max(max, Number.isNaN(a) || Number.isNaN(b) ? Infinity : Math.abs(a - b));
  }
  return max;
}

describe('ForwardModel (typed arrays) against tfjs', () => {
  let trained: LatencyModel;
  beforeAll(async () => {
    await initTf('wasm');
    trained = (
      await trainModel(syntheticSamples(1500, 11), {
        backend: 'wasm',
        epochs: 8,
        batchSize: 128,
        learningRate: 0.005,
      })
    ).model;
  });

  it.each([
    ['trained', () => trained],
    ['untrained', () => untrainedModel(3)],
  ])('equals tfjs within 1e-4 on 1,000 random inputs (%s)', async (_name, get) => {
    const model = get();
    const n = 1000;
    const raw = randomVectors(n, 42);
    const tf = await tfPredict(model, raw, n);
    const diff = maxDiff(model, tf, raw, n);
    console.log(`max |typed − tfjs| over ${n} inputs × 2 heads (${_name}): ${diff.toExponential(2)}`);
    expect(tf.every(Number.isFinite)).toBe(true);
    expect(diff).toBeLessThan(1e-4);
  });

  it('single, batch and sample forms agree; p90 never below the mean', () => {
    const fwd = new ForwardModel(trained);
    const rnd = seededRandom(9);
    const input = dispatchInput(randomFeatures(rnd));
    const raw = new Float64Array(FEATURE_COUNT);
    featurizeInto(input, raw);
    const one = fwd.predict(raw);
    expect(fwd.predictSample(input)).toEqual(one);
    const batch = fwd.predictBatch(raw, 1);
    expect([batch[0], batch[1]]).toEqual([one.logLatency, one.logP90]);
    expect(one.logP90!).toBeGreaterThanOrEqual(one.logLatency);
    expect(softplus(1000)).toBe(1000);
    expect(softplus(-1000)).toBe(0);
  });

  it('stays within what training saw: inputs clamped to their range, the correction to its range', () => {
    const fwd = new ForwardModel(trained);
    const { min, max } = trained.normalisation;
    const r = trained.target.residualOf!;
    expect(r).toBe(RESIDUAL_INDEX);
    const edge = Float64Array.from(max);
    const beyond = Float64Array.from(max, (x, j) => x + 1000 * (1 + Math.abs(x - (min[j] as number))));
    // the network sees clamped inputs; the estimate it corrects is added back as it is
    const shift = (beyond[r] as number) - (edge[r] as number);
    const a = fwd.predict(beyond);
    const b = fwd.predict(edge);
    expect(a.logLatency - shift).toBeCloseTo(b.logLatency, 9);
    expect(a.logP90! - shift).toBeCloseTo(b.logP90!, 9);
    const rnd = seededRandom(5);
    const wild = Float64Array.from({ length: 1000 * FEATURE_COUNT }, () => (rnd() - 0.5) * 1e6);
    const out = fwd.predictBatch(wild, 1000);
    for (let i = 0; i < 1000; i++) {
      const base = wild[i * FEATURE_COUNT + r] as number;
      for (const y of [out[2 * i] as number, out[2 * i + 1] as number]) {
        if (Number.isNaN(base)) continue;
        expect(y - base).toBeGreaterThanOrEqual(trained.target.min - 1e-9);
        expect(y - base).toBeLessThanOrEqual(trained.target.max + 1e-9);
      }
    }
  });

  it('predicts a pool of 100 endpoints in microseconds (printed, not asserted)', async () => {
    const rows = await runForwardBench(trained, { endpoints: 100, rounds: 100, runs: 3, tfjs: true });
    console.log(`forward pass, pool of 100 endpoints:\n${formatForwardRows(rows)}`);
    expect(rows.map((r) => r.name)).toEqual([
      'forward',
      'featurize+fwd',
      'predictor hook',
      'predictBatch',
      'tfjs batch',
    ]);
  });
});
