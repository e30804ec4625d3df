import { cloneModel, type LatencyModel } from '../../../src/model/model.js';
import { refit } from '../../../src/model/refit.js';
import type { TrainingSample } from '../../../src/model/sample.js';
import { splitHoldout, trainModel } from '../../../src/model/train.js';
import { seededRandom } from '../../../src/util/clock.js';
import { syntheticSamples } from './synthetic.js';

const opts = { backend: 'wasm' as const, epochs: 10, batchSize: 128, learningRate: 0.005 };

/** The same samples with their outcomes shuffled among them: features no longer explain latency. */
function shuffledLabels(samples: TrainingSample[], seed: number): TrainingSample[] {
  const rnd = seededRandom(seed);
  const outcomes = samples.map((s) => ({ latencyMs: s.latencyMs, failed: s.failed }));
  for (let i = outcomes.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [outcomes[i], outcomes[j]] = [outcomes[j]!, outcomes[i]!];
  }
  return samples.map((s, i) => ({ ...s, ...outcomes[i]! }));
}

/** The model with noise added to every weight. */
function corrupted(m: LatencyModel, scale: number, seed = 3): LatencyModel {
  const c = cloneModel(m);
  const rnd = seededRandom(seed);
  for (const l of c.layers) for (let i = 0; i < l.weights.length; i++) l.weights[i]! += (rnd() - 0.5) * scale;
  return c;
}

describe('refit', () => {
  let good: LatencyModel;
  let fresh: TrainingSample[];
  let holdout: TrainingSample[];
  beforeAll(async () => {
    good = (await trainModel(syntheticSamples(1500, 21), opts)).model;
    ({ train: fresh, holdout } = splitHoldout(syntheticSamples(1500, 22), 0.2, 1));
  });

  it('rejects a candidate trained on shuffled labels', async () => {
    const r = await refit(good, shuffledLabels(fresh, 5), { ...opts, holdout });
    console.log(`shuffled labels: ${r.reason}`);
    expect(r.promoted).toBe(false);
    expect(r.model).toBe(good);
    expect(r.candidateError!).toBeGreaterThan(r.currentError! * 2);
    expect(r.reason).toMatch(
      /^candidate rejected: holdout MAE [\d.]+ is not below current [\d.]+ on \d+ samples$/,
    );
  });

  it('rejects a candidate with corrupted weights, and promotes a good one over a corrupted current', async () => {
    const bad = corrupted(good, 1);
    const rejected = await refit(good, fresh, { ...opts, holdout, fit: async () => cloneModel(bad) });
    expect(rejected.promoted).toBe(false);
    expect(rejected.candidateError!).toBeGreaterThan(rejected.currentError!);
    const promoted = await refit(bad, fresh, { ...opts, holdout, fit: async () => cloneModel(good) });
    expect(promoted.promoted).toBe(true);
    expect(promoted.model).toBe(promoted.candidate);
    expect(promoted.candidateError!).toBeLessThan(promoted.currentError!);
    expect(promoted.reason).toMatch(/^candidate promoted: holdout MAE [\d.]+ < current [\d.]+/);
  });

  it('a candidate no better than the model in force is not promoted (ties and margins)', async () => {
    const same = await refit(good, fresh, { ...opts, holdout, fit: async () => cloneModel(good) });
    expect(same.promoted).toBe(false);
    expect(same.candidateError).toBe(same.currentError);
    const slightly = await refit(corrupted(good, 0.05), fresh, {
      ...opts,
      holdout,
      fit: async () => cloneModel(good),
      minImprovement: 10,
    });
    expect(slightly.promoted).toBe(false);
    expect(slightly.reason).toMatch(/− 10\.0000/);
  });

  it('trains and promotes the first model, judged on its own seeded holdout', async () => {
    const r = await refit(undefined, fresh, opts);
    expect(r.promoted).toBe(true);
    expect(r.currentError).toBeUndefined();
    // it beats the built-in estimate it corrects (synthetic.ts: off by a σ 0.3 factor)
    expect(r.candidateError!).toBeLessThan(r.candidateMetrics!.baselineMaeLog * 0.9);
    expect(r.reason).toMatch(/no current model/);
    expect(r.model?.metrics).toEqual(r.candidateMetrics);
  });

  it('keeps the current model when there are too few samples or training fails', async () => {
    const few = await refit(good, fresh.slice(0, 10), opts);
    expect(few).toEqual({
      promoted: false,
      reason: expect.stringMatching(/^no refit: too few samples/),
      model: good,
    });
    const none = await refit(undefined, [], opts);
    expect(none.promoted).toBe(false);
    expect(none.model).toBeUndefined();
    const nan = cloneModel(good);
    nan.layers[0]!.weights[0] = NaN;
    const diverged = await refit(good, fresh, { ...opts, holdout, fit: async () => nan });
    expect(diverged.promoted).toBe(false);
    expect(diverged.reason).toMatch(/candidate rejected: its holdout error is/);
  });
});
