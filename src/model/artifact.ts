import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SibylError, errorMessage } from '../util/errors.js';
import {
  FEATURE_NAMES,
  FEATURES_VERSION,
  RESIDUAL_FEATURE,
  RESIDUAL_INDEX,
  TARGET_TRANSFORM,
  featuresFile,
  type FeaturesFile,
} from './features.js';
import type { Activation, DenseLayer, HoldoutMetrics, LatencyModel, TrainingInfo } from './model.js';
import type { QuantileCalibration } from './quantiles.js';

/**
 * The model on disk and on the wire (docs/architecture.md, "Model"). A directory holds three files:
 *
 *   model.json     our own small, topology-free description: layer shapes and activations, feature
 *                  version and names, normalisation, target scaling, holdout metrics, training info,
 *                  and the weights file's size and SHA-256
 *   weights.bin    every layer's weights (inputs × outputs, row-major) then its bias, layer by layer,
 *                  float32 little-endian (≈ 4 KB for 14 → 32 → 16 → 2)
 *   features.json  the feature definition the model was trained against (features.ts)
 *
 * For the control protocol (WireModel.artifactJson) the same model.json carries the weights inline in
 * base64 instead of naming a file (modelToJson / modelFromJson).
 *
 * Loading validates everything a forward pass relies on and fails with ERR_MODEL and a message naming
 * the file and the mismatch: another feature version or list, shapes that do not chain, a weights file
 * of the wrong size or checksum, non-finite numbers.
 */
const MODEL_FORMAT = 'sibyl.latency-mlp';
const MODEL_FORMAT_VERSION = 1;
const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';
const FEATURES_FILE = 'features.json';

interface WeightsRef {
  dtype: 'float32';
  byteOrder: 'little-endian';
  layout: string;
  bytes: number;
  sha256: string;
  file?: string;
  base64?: string;
}

export interface ModelFile {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  /** Content address: changes whenever anything the forward pass uses changes. */
  version: string;
  featuresVersion: number;
  features: string[];
  normalisation: { mean: number[]; std: number[]; min: number[]; max: number[] };
  target: {
    transform: string;
    mean: number;
    std: number;
    min: number;
    max: number;
    quantile: number | null;
    /** The input the target is relative to (residual model; features.ts RESIDUAL_FEATURE). */
    residualOf?: string;
  };
  layers: { inputs: number; outputs: number; activation: Activation }[];
  weights: WeightsRef;
  calibration?: QuantileCalibration;
  metrics?: HoldoutMetrics;
  training?: TrainingInfo;
}

const LAYOUT = 'per layer: weights (inputs × outputs, row-major), then bias';

/** All weights and biases, float32 little-endian, in LAYOUT order. */
export function encodeWeights(model: LatencyModel): Uint8Array {
  const total = model.layers.reduce((n, l) => n + l.weights.length + l.bias.length, 0);
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  let off = 0;
  for (const l of model.layers) {
    for (const arr of [l.weights, l.bias]) {
      for (let i = 0; i < arr.length; i++, off += 4) view.setFloat32(off, arr[i] as number, true);
    }
  }
  return bytes;
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The model's version: a hash of everything the forward pass reads (features, normalisation, target,
 * shapes, weights, and the quantile calibration when there is one), so two artefacts with equal
 * versions predict the same. Metrics and training info are left out.
 */
export function modelVersion(model: LatencyModel): string {
  const meta = JSON.stringify({
    featuresVersion: model.featuresVersion,
    features: model.featureNames,
    normalisation: model.normalisation,
    target: model.target,
    layers: model.layers.map((l) => [l.inputs, l.outputs, l.activation]),
    ...(model.calibration ? { calibration: model.calibration } : {}),
  });
  return sha256(Buffer.concat([Buffer.from(meta), encodeWeights(model)])).slice(0, 16);
}

function modelFile(
  model: LatencyModel,
  weights: Uint8Array,
  where: { file?: string; base64?: string },
): ModelFile {
  const f: ModelFile = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    version: modelVersion(model),
    featuresVersion: model.featuresVersion,
    features: [...model.featureNames],
    normalisation: {
      mean: [...model.normalisation.mean],
      std: [...model.normalisation.std],
      min: [...model.normalisation.min],
      max: [...model.normalisation.max],
    },
    target: {
      transform: TARGET_TRANSFORM,
      mean: model.target.mean,
      std: model.target.std,
      min: model.target.min,
      max: model.target.max,
      quantile: model.target.quantile,
      ...(model.target.residualOf !== undefined
        ? { residualOf: model.featureNames[model.target.residualOf] ?? String(model.target.residualOf) }
        : {}),
    },
    layers: model.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, activation: l.activation })),
    weights: {
      dtype: 'float32',
      byteOrder: 'little-endian',
      layout: LAYOUT,
      bytes: weights.length,
      sha256: sha256(weights),
      ...where,
    },
  };
  if (model.calibration) f.calibration = model.calibration;
  if (model.metrics) f.metrics = model.metrics;
  if (model.training) f.training = model.training;
  return f;
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/**
 * Writes the model to `dir` (created if needed): weights.bin and features.json first, model.json last,
 * each by rename, so a reader never sees a model.json whose weights are not there yet. Returns the paths.
 */
export async function saveModel(model: LatencyModel, dir: string): Promise<string[]> {
  validateModel(model, 'model');
  await mkdir(dir, { recursive: true });
  const weights = encodeWeights(model);
  const paths = [WEIGHTS_FILE, FEATURES_FILE, MODEL_FILE].map((f) => path.join(dir, f));
  await writeAtomic(paths[0] as string, weights);
  await writeAtomic(paths[1] as string, JSON.stringify(featuresFile(), null, 2) + '\n');
  await writeAtomic(
    paths[2] as string,
    JSON.stringify(modelFile(model, weights, { file: WEIGHTS_FILE }), null, 2) + '\n',
  );
  return paths;
}

/** Reads and validates the model in `dir` (ERR_MODEL on any problem). */
export async function loadModel(dir: string): Promise<LatencyModel> {
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(path.join(dir, name));
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const why = code === 'ENOENT' ? 'not found (train a model with `sibyl train`)' : errorMessage(e);
      throw new SibylError('ERR_MODEL', `${path.join(dir, name)}: ${why}`, { cause: e });
    }
  };
  const where = path.join(dir, MODEL_FILE);
  const file = parseJson(await read(MODEL_FILE), where);
  const features = parseJson(await read(FEATURES_FILE), path.join(dir, FEATURES_FILE));
  checkFeaturesFile(features, path.join(dir, FEATURES_FILE));
  const ref = (file as { weights?: { file?: unknown } }).weights;
  const name = typeof ref?.file === 'string' ? ref.file : WEIGHTS_FILE;
  if (name !== path.basename(name))
    throw new SibylError('ERR_MODEL', `${where}: weights.file must be a plain file name`);
  return fromModelFile(file, new Uint8Array(await read(name)), where);
}

/** The model as one self-contained JSON text (weights in base64): WireModel.artifactJson. */
export function modelToJson(model: LatencyModel): string {
  validateModel(model, 'model');
  const weights = encodeWeights(model);
  return JSON.stringify(modelFile(model, weights, { base64: Buffer.from(weights).toString('base64') }));
}

/** Parses and validates modelToJson's output (ERR_MODEL on any problem). */
export function modelFromJson(text: string, where = 'model artifact'): LatencyModel {
  const file = parseJson(Buffer.from(text), where);
  const b64 = (file as { weights?: { base64?: unknown } }).weights?.base64;
  if (typeof b64 !== 'string') throw new SibylError('ERR_MODEL', `${where}: weights.base64 is missing`);
  return fromModelFile(file, new Uint8Array(Buffer.from(b64, 'base64')), where);
}

function parseJson(data: Buffer, where: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new SibylError('ERR_MODEL', `${where}: not JSON (${errorMessage(e)})`, { cause: e });
  }
}

function fail(where: string, msg: string): never {
  throw new SibylError('ERR_MODEL', `${where}: ${msg}`);
}

const RETRAIN = 'retrain it with `sibyl train`';

function checkFeatureList(names: unknown, where: string, field: string): void {
  if (
    !Array.isArray(names) ||
    names.length !== FEATURE_NAMES.length ||
    names.some((n, i) => n !== FEATURE_NAMES[i])
  ) {
    fail(
      where,
      `${field} [${Array.isArray(names) ? names.join(', ') : String(names)}] differ from this build's ` +
        `features [${FEATURE_NAMES.join(', ')}]; ${RETRAIN}`,
    );
  }
}

function checkFeaturesVersion(v: unknown, where: string, field: string): void {
  if (v !== FEATURES_VERSION) {
    fail(
      where,
      `${field} ${String(v)} does not match this build's features version ${FEATURES_VERSION}; ${RETRAIN}`,
    );
  }
}

function checkFeaturesFile(f: unknown, where: string): void {
  const o = f as Partial<FeaturesFile> | null;
  if (typeof o !== 'object' || o === null) fail(where, 'not an object');
  checkFeaturesVersion(o.version, where, 'version');
  checkFeatureList(
    Array.isArray(o.features) ? o.features.map((x) => (x as { name?: unknown }).name) : o.features,
    where,
    'features',
  );
}

function finiteArray(x: unknown, n: number, where: string, field: string): number[] {
  if (!Array.isArray(x) || x.length !== n || !x.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    fail(where, `${field} must be ${n} finite numbers`);
  }
  return x as number[];
}

function fromModelFile(f: unknown, weights: Uint8Array, where: string): LatencyModel {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) fail(where, 'not an object');
  const o = f as Partial<ModelFile>;
  if (o.format !== MODEL_FORMAT) fail(where, `format "${String(o.format)}" is not ${MODEL_FORMAT}`);
  if (o.formatVersion !== MODEL_FORMAT_VERSION) {
    fail(where, `formatVersion ${String(o.formatVersion)} is not ${MODEL_FORMAT_VERSION}; ${RETRAIN}`);
  }
  checkFeaturesVersion(o.featuresVersion, where, 'featuresVersion');
  checkFeatureList(o.features, where, 'features');
  const d = FEATURE_NAMES.length;
  const norm = o.normalisation ?? ({} as ModelFile['normalisation']);
  const mean = finiteArray(norm.mean, d, where, 'normalisation.mean');
  const std = finiteArray(norm.std, d, where, 'normalisation.std');
  const min = finiteArray(norm.min, d, where, 'normalisation.min');
  const max = finiteArray(norm.max, d, where, 'normalisation.max');
  const t = o.target ?? ({} as ModelFile['target']);
  const quantile = t.quantile ?? null;
  if (!Array.isArray(o.layers) || o.layers.length === 0) fail(where, 'layers must be a non-empty list');
  o.layers.forEach((l, k) => {
    const ok = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65_536;
    if (typeof l !== 'object' || l === null || !ok(l.inputs) || !ok(l.outputs)) {
      fail(where, `layer ${k} must have whole-number inputs and outputs`);
    }
  });
  const w = o.weights;
  if (typeof w !== 'object' || w === null) fail(where, 'weights is missing');
  if (w.dtype !== 'float32' || w.byteOrder !== 'little-endian') {
    fail(where, `weights must be float32 little-endian, not ${String(w.dtype)} ${String(w.byteOrder)}`);
  }
  const need = o.layers.reduce(
    (n, l) => n + 4 * ((l?.inputs ?? 0) * (l?.outputs ?? 0) + (l?.outputs ?? 0)),
    0,
  );
  if (weights.length !== need || w.bytes !== need) {
    fail(
      where,
      `the weights hold ${weights.length} bytes (declared ${String(w.bytes)}); the layers need ${need}`,
    );
  }
  if (w.sha256 !== sha256(weights))
    fail(where, 'the weights do not match their SHA-256 (corrupted or mixed up)');
  const view = new DataView(weights.buffer, weights.byteOffset, weights.byteLength);
  let off = 0;
  const take = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++, off += 4) a[i] = view.getFloat32(off, true);
    return a;
  };
  const layers: DenseLayer[] = o.layers.map((l) => ({
    inputs: l.inputs,
    outputs: l.outputs,
    activation: l.activation,
    weights: take(l.inputs * l.outputs),
    bias: take(l.outputs),
  }));
  const model: LatencyModel = {
    featuresVersion: o.featuresVersion as number,
    featureNames: [...(o.features as string[])],
    normalisation: { mean, std, min, max },
    target: {
      mean: t.mean,
      std: t.std,
      min: t.min,
      max: t.max,
      quantile,
      ...(t.residualOf !== undefined ? { residualOf: FEATURE_NAMES.indexOf(t.residualOf) } : {}),
    },
    layers,
  };
  if (o.calibration !== undefined) model.calibration = o.calibration;
  if (o.metrics) model.metrics = o.metrics;
  if (o.training) model.training = o.training;
  validateModel(model, where);
  if (o.version !== undefined && o.version !== modelVersion(model)) {
    fail(where, `version ${String(o.version)} does not match the content (${modelVersion(model)})`);
  }
  return model;
}

/**
 * Checks that `model` is one this build's forward pass can run: this feature version and list, matching
 * normalisation, layers that chain from the features to one or two linear outputs (two exactly when the
 * target has a quantile), finite numbers throughout. Throws ERR_MODEL naming `where`.
 */
export function validateModel(model: LatencyModel, where = 'model'): void {
  checkFeaturesVersion(model.featuresVersion, where, 'featuresVersion');
  checkFeatureList(model.featureNames, where, 'features');
  const d = FEATURE_NAMES.length;
  const norm = model.normalisation;
  finiteArray(norm.mean, d, where, 'normalisation.mean');
  if (finiteArray(norm.std, d, where, 'normalisation.std').some((s) => s < 0)) {
    fail(where, 'normalisation.std must not be negative');
  }
  const hi = finiteArray(norm.max, d, where, 'normalisation.max');
  if (finiteArray(norm.min, d, where, 'normalisation.min').some((lo, j) => lo > (hi[j] as number))) {
    fail(where, 'normalisation.min must not exceed normalisation.max');
  }
  const { mean, std, quantile } = model.target;
  if (!Number.isFinite(mean) || !Number.isFinite(std) || !(std > 0)) {
    fail(where, 'target.mean must be finite and target.std finite and positive');
  }
  if (
    !Number.isFinite(model.target.min) ||
    !Number.isFinite(model.target.max) ||
    model.target.min > model.target.max
  ) {
    fail(where, 'target.min and target.max must be finite, min ≤ max');
  }
  if (quantile !== null && !(typeof quantile === 'number' && quantile > 0 && quantile < 1)) {
    fail(where, `target.quantile ${String(quantile)} must be null or strictly between 0 and 1`);
  }
  // features version 3 defines the target as relative to the built-in estimate: a model must say so
  if (model.target.residualOf !== RESIDUAL_INDEX) {
    fail(where, `target.residualOf must be ${RESIDUAL_FEATURE} (the target is ${TARGET_TRANSFORM})`);
  }
  let width = d;
  model.layers.forEach((l, k) => {
    const last = k === model.layers.length - 1;
    if (!Number.isInteger(l.inputs) || !Number.isInteger(l.outputs) || l.outputs < 1) {
      fail(where, `layer ${k} has shape ${String(l.inputs)} → ${String(l.outputs)}`);
    }
    if (l.inputs !== width) fail(where, `layer ${k} expects ${l.inputs} inputs but receives ${width}`);
    if (l.activation !== 'relu' && l.activation !== 'linear') {
      fail(where, `layer ${k} has an unknown activation "${String(l.activation)}"`);
    }
    if (last && l.activation !== 'linear') fail(where, 'the output layer must be linear');
    if (l.weights.length !== l.inputs * l.outputs || l.bias.length !== l.outputs) {
      fail(
        where,
        `layer ${k} holds ${l.weights.length} weights and ${l.bias.length} biases for ${l.inputs} → ${l.outputs}`,
      );
    }
    if (!l.weights.every(Number.isFinite) || !l.bias.every(Number.isFinite)) {
      fail(where, `layer ${k} has non-finite weights`);
    }
    width = l.outputs;
  });
  const heads = quantile === null ? 1 : 2;
  if (width !== heads) {
    fail(
      where,
      `the output layer has ${width} outputs; a model with quantile ${String(quantile)} needs ${heads}`,
    );
  }
  if (model.calibration !== undefined) checkCalibration(model.calibration, where);
}

/** A calibration table: ascending levels in (0, 1), one finite non-decreasing score each. */
function checkCalibration(c: QuantileCalibration, where: string): void {
  const { levels, scores, samples, source } = (c ?? {}) as Partial<QuantileCalibration>;
  if (!Array.isArray(levels) || !Array.isArray(scores) || levels.length !== scores.length) {
    fail(where, 'calibration must have levels and scores of one length');
  }
  levels.forEach((q, k) => {
    if (!(typeof q === 'number' && q > 0 && q < 1) || (k > 0 && !(q > (levels[k - 1] as number)))) {
      fail(where, 'calibration.levels must ascend strictly between 0 and 1');
    }
    const s = scores[k];
    if (typeof s !== 'number' || !Number.isFinite(s) || (k > 0 && s < (scores[k - 1] as number))) {
      fail(where, 'calibration.scores must be finite and non-decreasing');
    }
  });
  if (!(typeof samples === 'number' && Number.isInteger(samples) && samples > 0)) {
    fail(where, 'calibration.samples must be a positive whole number');
  }
  if (source !== 'holdout' && source !== 'live') fail(where, 'calibration.source must be holdout or live');
}
