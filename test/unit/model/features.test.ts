import {
  AGE_CAP_MS,
  FEATURE_COUNT,
  FEATURE_NAMES,
  FEATURES_VERSION,
  featuresFile,
  featurize,
  featurizeAll,
  fitNormalisation,
  normaliseInto,
  sampleProblem,
  targetOf,
  RESIDUAL_INDEX,
  type FeatureInput,
} from '../../../src/model/features.js';

const base: FeatureInput = {
  cpu: 0.5,
  memory: 0.25,
  inflight: 3,
  queueLength: 7,
  recentLatencyMs: 2,
  payloadBytes: 2048,
  methodCostMs: 10,
  errorRate: 0.1,
  oldestInflightMs: 99,
  telemetryAgeMs: 1000,
  builtinEstimateMs: 30,
};

describe('features', () => {
  it('has a version and a fixed, named order', () => {
    expect(FEATURES_VERSION).toBe(3);
    expect(FEATURE_COUNT).toBe(15);
    expect(FEATURE_NAMES[RESIDUAL_INDEX]).toBe('log_builtin_estimate');
    expect(FEATURE_NAMES.slice(0, 4)).toEqual(['cpu', 'memory', 'log_inflight', 'log_queue']);
    expect(featuresFile().features.map((f) => f.name)).toEqual(FEATURE_NAMES);
  });

  it('turns a sample into logs and flags in that order', () => {
    const v = featurize(base);
    expect(Array.from(v)).toEqual([
      0.5,
      0.25,
      Math.log(4),
      Math.log(8),
      Math.log(2),
      Math.log(3),
      Math.log(10),
      0.1,
      Math.log(100),
      Math.log(1001),
      1,
      1,
      1,
      1,
      Math.log(30),
    ]);
  });

  it('takes the built-in estimate, else methodCostMs × recentLatencyMs (an input built by hand)', () => {
    expect(featurize({ ...base, builtinEstimateMs: undefined })[RESIDUAL_INDEX]).toBeCloseTo(
      Math.log(20),
      12,
    );
    expect(featurize({ ...base, builtinEstimateMs: NaN, recentLatencyMs: 0 })[RESIDUAL_INDEX]).toBeCloseTo(
      Math.log(10),
      12,
    );
    expect(featurize({ ...base, builtinEstimateMs: undefined, methodCostMs: NaN })[RESIDUAL_INDEX]).toBeNaN();
  });

  it('marks absent figures NaN with a 0 flag, and caps ages (Infinity = never)', () => {
    const v = featurize({
      ...base,
      cpu: undefined,
      memory: NaN,
      queueLength: undefined,
      recentLatencyMs: 0,
      telemetryAgeMs: Infinity,
    });
    expect([v[0], v[1], v[3], v[4]].every(Number.isNaN)).toBe(true);
    expect([v[10], v[11], v[12], v[13]]).toEqual([0, 0, 0, 0]);
    expect(v[9]).toBeCloseTo(Math.log1p(AGE_CAP_MS), 12);
    expect(featurize({ ...base, cpu: 9, errorRate: -1 })[0]).toBe(4);
    expect(featurize({ ...base, errorRate: -1 })[7]).toBe(0);
  });

  it('fits mean and std ignoring missing values; constant features are ignored', () => {
    const rows = [
      { ...base, inflight: 0, cpu: 0.2 },
      { ...base, inflight: 1, cpu: undefined },
      { ...base, inflight: 3, cpu: 0.4 },
    ];
    const raw = featurizeAll(rows);
    const norm = fitNormalisation(raw);
    expect(norm.mean[0]).toBeCloseTo(0.3, 12); // cpu: the two known values
    expect(norm.std[0]).toBeCloseTo(Math.sqrt(0.02), 12);
    expect(norm.std[1]).toBe(0); // memory constant
    const z = new Float64Array(raw.length);
    normaliseInto(raw, norm, z);
    expect(z[FEATURE_COUNT]).toBe(0); // missing cpu → 0
    expect(z[1]).toBe(0); // constant memory → 0
    expect(z[0]).toBeCloseTo(-1 / Math.sqrt(2), 12);
    expect([norm.min[0], norm.max[0]]).toEqual([0.2, 0.4]);
    expect([norm.min[2], norm.max[2]]).toEqual([0, Math.log(4)]);
  });

  it('clamps to the range seen in training before normalising (no extrapolation)', () => {
    const norm = { mean: [1], std: [2], min: [0], max: [3] };
    const z = new Float64Array(4);
    normaliseInto([-100, 0, 3, 100], norm, z);
    expect(Array.from(z)).toEqual([-0.5, -0.5, 1, 1]);
  });

  it('targets ln latency with a floor', () => {
    expect(targetOf(Math.E)).toBeCloseTo(1, 12);
    expect(Number.isFinite(targetOf(0))).toBe(true);
  });

  it('says what is wrong with a bad sample', () => {
    const good = { ...base, latencyMs: 5, failed: false };
    expect(sampleProblem(good)).toBeUndefined();
    expect(sampleProblem({ ...good, inflight: 'x' })).toMatch(/inflight/);
    expect(sampleProblem({ ...good, cpu: NaN })).toMatch(/cpu/);
    expect(sampleProblem({ ...good, failed: 1 })).toMatch(/failed/);
    expect(sampleProblem([])).toMatch(/object/);
    // samples from before features version 3 carry no estimate: refused, not guessed at
    expect(sampleProblem({ ...good, builtinEstimateMs: undefined })).toMatch(/builtinEstimateMs is missing/);
    expect(sampleProblem({ ...good, builtinEstimateMs: 0 })).toMatch(/builtinEstimateMs must be/);
  });
});
