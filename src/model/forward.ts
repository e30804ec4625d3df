import { SibylError } from '../util/errors.js';
import { FEATURE_COUNT, featurizeInto, type FeatureInput } from './features.js';
import type { LatencyModel } from './model.js';

/**
 * The model's forward pass on plain typed arrays (docs/architecture.md, "Router": a pick costs microseconds, so routers
 * never call tfjs per request). Same formula as model.ts states and train.ts's tfjs graph computes:
 * normalise, then dense layers y = act(x · W + b), then the heads. Weights are held as Float64 copies of
 * the Float32 values (so the only difference from tfjs is its float32 rounding along the way, ~1e-6),
 * transposed so each output's dot product runs over contiguous memory. Allocation-free per call
 * (predictInto); not re-entrant (scratch buffers are shared), which is fine on Node's one thread.
 */
export interface Prediction {
  /** Predicted ln(latency ms) (the conditional mean of the log; a residual model's base added back). */
  logLatency: number;
  /** Predicted ln of the latency's p90, when the model has that head. */
  logP90?: number;
}

export function softplus(x: number): number {
  // log(1 + e^x) without overflow: max(x, 0) + log1p(e^−|x|)
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

interface Layer {
  inputs: number;
  outputs: number;
  relu: boolean;
  /** outputs × inputs (transposed). */
  wt: Float64Array;
  b: Float64Array;
}

export class ForwardModel {
  readonly inputs: number;
  readonly outputs: number;
  private readonly mean: Float64Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  /** 1/std, or 0 for a feature ignored (constant in training). */
  private readonly invStd: Float64Array;
  private readonly layers: Layer[];
  private readonly tMean: number;
  private readonly tStd: number;
  private readonly tMin: number;
  private readonly tMax: number;
  /** The raw input the output is relative to (residual model), or −1. */
  private readonly residualOf: number;
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly raw: Float64Array;
  private readonly out2 = new Float64Array(2);

  constructor(readonly model: LatencyModel) {
    const first = model.layers[0];
    const last = model.layers[model.layers.length - 1];
    if (!first || !last) throw new SibylError('ERR_MODEL', 'model has no layers');
    this.inputs = first.inputs;
    this.outputs = last.outputs;
    const norm = model.normalisation;
    if ([norm.mean, norm.std, norm.min, norm.max].some((a) => a.length !== this.inputs)) {
      throw new SibylError(
        'ERR_MODEL',
        `normalisation has ${model.normalisation.mean.length} features, the first layer ${this.inputs} inputs`,
      );
    }
    if (this.outputs !== 1 && this.outputs !== 2) {
      throw new SibylError('ERR_MODEL', `the last layer has ${this.outputs} outputs; expected 1 or 2`);
    }
    this.mean = Float64Array.from(model.normalisation.mean);
    this.lo = Float64Array.from(model.normalisation.min);
    this.hi = Float64Array.from(model.normalisation.max);
    this.invStd = Float64Array.from(model.normalisation.std, (s) => (s > 0 ? 1 / s : 0));
    let width = this.inputs;
    this.layers = model.layers.map((l, k) => {
      if (l.inputs !== width) {
        throw new SibylError('ERR_MODEL', `layer ${k} expects ${l.inputs} inputs but receives ${width}`);
      }
      width = l.outputs;
      const wt = new Float64Array(l.inputs * l.outputs);
      for (let i = 0; i < l.inputs; i++) {
        for (let j = 0; j < l.outputs; j++) wt[j * l.inputs + i] = l.weights[i * l.outputs + j] as number;
      }
      return {
        inputs: l.inputs,
        outputs: l.outputs,
        relu: l.activation === 'relu',
        wt,
        b: Float64Array.from(l.bias),
      };
    });
    const widest = Math.max(this.inputs, ...model.layers.map((l) => l.outputs));
    this.a = new Float64Array(widest);
    this.b = new Float64Array(widest);
    this.raw = new Float64Array(this.inputs);
    this.tMean = model.target.mean;
    this.tStd = model.target.std;
    this.tMin = model.target.min;
    this.tMax = model.target.max;
    const r = model.target.residualOf;
    if (r !== undefined && !(Number.isInteger(r) && r >= 0 && r < this.inputs)) {
      throw new SibylError('ERR_MODEL', `target.residualOf ${r} is not one of the ${this.inputs} inputs`);
    }
    this.residualOf = r ?? -1;
  }

  /**
   * Predicts from the raw feature vector at raw[rawOffset …] (features.ts order, NaN = missing) into
   * out[outOffset] (ln latency) and out[outOffset + 1] (ln p90, NaN without that head).
   */
  predictInto(raw: ArrayLike<number>, rawOffset: number, out: Float64Array, outOffset = 0): void {
    let x = this.a;
    let y = this.b;
    const d = this.inputs;
    for (let i = 0; i < d; i++) {
      let v = raw[rawOffset + i] as number;
      const s = this.invStd[i] as number;
      if (v !== v || s === 0) {
        x[i] = 0; // v !== v: NaN, missing
        continue;
      }
      const lo = this.lo[i] as number;
      const hi = this.hi[i] as number;
      v = v < lo ? lo : v > hi ? hi : v;
      x[i] = (v - (this.mean[i] as number)) * s;
    }
    const layers = this.layers;
    for (let k = 0; k < layers.length; k++) {
      const l = layers[k] as Layer;
      const n = l.inputs;
      const wt = l.wt;
      for (let j = 0; j < l.outputs; j++) {
        let acc = l.b[j] as number;
        const row = j * n;
        for (let i = 0; i < n; i++) acc += (x[i] as number) * (wt[row + i] as number);
        y[j] = l.relu && acc < 0 ? 0 : acc;
      }
      const t = x;
      x = y;
      y = t;
    }
    // a residual model's output is a correction to its base input (NaN base: no prediction)
    const base = this.residualOf < 0 ? 0 : (raw[rawOffset + this.residualOf] as number);
    const mu = this.tMean + this.tStd * (x[0] as number);
    const lo = this.tMin;
    const hi = this.tMax;
    out[outOffset] = base + (mu < lo ? lo : mu > hi ? hi : mu);
    if (this.outputs === 2) {
      const p90 = mu + this.tStd * softplus(x[1] as number);
      out[outOffset + 1] = base + (p90 < lo ? lo : p90 > hi ? hi : p90);
    } else out[outOffset + 1] = NaN;
  }

  /** Predicts one raw feature vector. */
  predict(raw: ArrayLike<number>): Prediction {
    this.predictInto(raw, 0, this.out2);
    const logLatency = this.out2[0] as number;
    return this.outputs === 2 ? { logLatency, logP90: this.out2[1] as number } : { logLatency };
  }

  /**
   * Predicts `n` raw vectors stored row-major in `raw` (n × inputs); returns (or fills) `out`, n × 2:
   * [ln latency, ln p90 (NaN without that head)] per row.
   */
  predictBatch(raw: ArrayLike<number>, n: number, out = new Float64Array(2 * n)): Float64Array {
    if (raw.length < n * this.inputs || out.length < 2 * n) {
      throw new SibylError('ERR_MODEL', `predictBatch: arrays too short for ${n} rows`);
    }
    for (let r = 0; r < n; r++) this.predictInto(raw, r * this.inputs, out, 2 * r);
    return out;
  }

  /** Featurizes and predicts one sample (the model must use this build's features). */
  predictSample(s: FeatureInput): Prediction {
    if (this.inputs !== FEATURE_COUNT) {
      throw new SibylError(
        'ERR_MODEL',
        `model takes ${this.inputs} inputs; this build's features are ${FEATURE_COUNT}`,
      );
    }
    featurizeInto(s, this.raw);
    return this.predict(this.raw);
  }
}
