import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  encodeWeights,
  loadModel,
  modelFromJson,
  modelToJson,
  modelVersion,
  saveModel,
  validateModel,
} from '../../../src/model/artifact.js';
import { untrainedModel } from '../../../src/tools/bench/predict-cost.js';
import { FEATURE_NAMES, FEATURES_VERSION } from '../../../src/model/features.js';
import { ForwardModel } from '../../../src/model/forward.js';
import { cloneModel, type LatencyModel } from '../../../src/model/model.js';
import { isSibylError } from '../../../src/util/errors.js';

function model(): LatencyModel {
  const m = untrainedModel(5);
  m.normalisation.std[1] = 0; // a constant feature survives the round trip
  m.metrics = { samples: 10, maeLog: 0.2, rmseLog: 0.3, baselineMaeLog: 1, p90Coverage: 0.9 };
  m.training = {
    seed: 1,
    epochs: 2,
    batchSize: 64,
    learningRate: 0.003,
    samples: 40,
    holdoutSamples: 10,
    droppedSamples: 0,
    backend: 'wasm',
    source: 'test',
  };
  return m;
}

function modelError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isSibylError(e, 'ERR_MODEL')) return e.message;
    throw e;
  }
  throw new Error('no ERR_MODEL');
}

async function loadError(dir: string): Promise<string> {
  const e = await loadModel(dir).catch((err: unknown) => err);
  if (isSibylError(e, 'ERR_MODEL')) return e.message;
  throw new Error(`expected ERR_MODEL, got ${String(e)}`);
}

describe('model artifact', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sibyl-model-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('saves model.json, weights.bin and features.json, a few KB, and loads the same model', async () => {
    const m = model();
    const paths = await saveModel(m, dir);
    expect(paths.map((p) => path.basename(p)).sort()).toEqual(['features.json', 'model.json', 'weights.bin']);
    const bytes = paths.reduce((n, p) => n + statSync(p).size, 0);
    expect(bytes).toBeLessThan(16_000);
    expect(statSync(path.join(dir, 'weights.bin')).size).toBe((15 * 32 + 32 + 32 * 16 + 16 + 16 * 2 + 2) * 4);
    const file = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(file).toMatchObject({
      format: 'sibyl.latency-mlp',
      featuresVersion: FEATURES_VERSION,
      features: FEATURE_NAMES,
      layers: [
        { inputs: 15, outputs: 32, activation: 'relu' },
        { inputs: 32, outputs: 16, activation: 'relu' },
        { inputs: 16, outputs: 2, activation: 'linear' },
      ],
      weights: { file: 'weights.bin', dtype: 'float32', byteOrder: 'little-endian' },
      version: modelVersion(m),
    });
    const back = await loadModel(dir);
    expect(back).toEqual(m);
    const x = Float64Array.from({ length: 15 }, (_, i) => i / 7);
    expect(new ForwardModel(back).predict(x)).toEqual(new ForwardModel(m).predict(x));
  });

  it('round-trips through one JSON text for the control protocol', () => {
    const m = model();
    const text = modelToJson(m);
    expect(text.length).toBeLessThan(12_000);
    expect(modelFromJson(text)).toEqual(m);
    const tampered = JSON.parse(text);
    tampered.weights.base64 = Buffer.from(encodeWeights(untrainedModel(6))).toString('base64');
    expect(modelError(() => modelFromJson(JSON.stringify(tampered)))).toMatch(/SHA-256/);
  });

  it('refuses another feature version, in model.json or features.json', async () => {
    await saveModel(model(), dir);
    const mf = path.join(dir, 'model.json');
    const good = readFileSync(mf, 'utf8');
    writeFileSync(mf, good.replace(`"featuresVersion": ${FEATURES_VERSION}`, '"featuresVersion": 99'));
    expect(await loadError(dir)).toMatch(
      new RegExp(
        `featuresVersion 99 does not match this build's features version ${FEATURES_VERSION}; retrain`,
      ),
    );
    writeFileSync(mf, good);
    const ff = path.join(dir, 'features.json');
    const features = JSON.parse(readFileSync(ff, 'utf8'));
    features.features.reverse();
    writeFileSync(ff, JSON.stringify(features));
    expect(await loadError(dir)).toMatch(
      /features\.json: features \[log_builtin_estimate, recent_latency_known.*differ from this build's/,
    );
  });

  it('refuses shapes that do not fit: layers, weights size, normalisation length', async () => {
    await saveModel(model(), dir);
    const mf = path.join(dir, 'model.json');
    const good = JSON.parse(readFileSync(mf, 'utf8'));
    const bad = structuredClone(good);
    bad.layers[1].inputs = 31;
    writeFileSync(mf, JSON.stringify(bad));
    expect(await loadError(dir)).toMatch(/weights hold 4296 bytes .* the layers need 4232/);
    writeFileSync(mf, JSON.stringify(good));
    writeFileSync(
      path.join(dir, 'weights.bin'),
      readFileSync(path.join(dir, 'weights.bin')).subarray(0, 100),
    );
    expect(await loadError(dir)).toMatch(/weights hold 100 bytes \(declared 4296\); the layers need 4296/);
    const m = model();
    m.normalisation.mean.pop();
    expect(modelError(() => validateModel(m))).toMatch(/normalisation.mean must be 15 finite numbers/);
    const chain = cloneModel(model());
    chain.layers[1] = { ...chain.layers[1]!, inputs: 8, weights: new Float32Array(8 * 16) };
    expect(modelError(() => validateModel(chain))).toMatch(/layer 1 expects 8 inputs but receives 32/);
    const heads = cloneModel(model());
    heads.target.quantile = null;
    expect(modelError(() => validateModel(heads))).toMatch(
      /output layer has 2 outputs; a model with quantile null needs 1/,
    );
    const plain = cloneModel(model());
    delete plain.target.residualOf; // a target that is not relative to the built-in estimate
    expect(modelError(() => validateModel(plain))).toMatch(/target.residualOf must be log_builtin_estimate/);
    const nan = cloneModel(model());
    nan.layers[2]!.bias[0] = NaN;
    expect(modelError(() => validateModel(nan))).toMatch(/layer 2 has non-finite weights/);
  });

  it('says which file is missing or broken', async () => {
    expect(await loadError(dir)).toMatch(/model\.json: not found/);
    await saveModel(model(), dir);
    writeFileSync(path.join(dir, 'model.json'), '{not json');
    expect(await loadError(dir)).toMatch(/model\.json: not JSON/);
  });

  it('keeps the quantile calibration, counts it in the version, and refuses a malformed one', () => {
    const m = model();
    const plain = modelVersion(m);
    m.calibration = { levels: [0.5, 0.99], scores: [0, 3], samples: 100, source: 'holdout' };
    expect(modelVersion(m)).not.toBe(plain);
    const back = modelFromJson(modelToJson(m));
    expect(back.calibration).toEqual(m.calibration);
    expect(modelVersion(back)).toBe(modelVersion(m));
    const bad = (c: object) => modelError(() => validateModel({ ...cloneModel(m), calibration: c as never }));
    expect(bad({ ...m.calibration, scores: [3, 0] })).toMatch(/scores must be finite and non-decreasing/);
    expect(bad({ ...m.calibration, levels: [0.5, 1] })).toMatch(
      /levels must ascend strictly between 0 and 1/,
    );
    expect(bad({ ...m.calibration, scores: [0] })).toMatch(/levels and scores of one length/);
    expect(bad({ ...m.calibration, source: 'guess' })).toMatch(/source must be holdout or live/);
  });
});
