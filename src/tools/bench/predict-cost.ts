import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { PredictiveFeatures } from '../../balancer/predictive.js';
import { SIGNAL_DEFAULTS, builtinEstimateMs, serviceEstimateMs } from '../../balancer/signals.js';
import { seededRandom, type Random } from '../../util/clock.js';
import { loadModel } from '../../model/artifact.js';
import {
  FEATURE_COUNT,
  FEATURE_NAMES,
  FEATURES_VERSION,
  RESIDUAL_INDEX,
  dispatchInput,
  featurizeInto,
  type FeatureInput,
} from '../../model/features.js';
import { ForwardModel } from '../../model/forward.js';
import { initLayers, type LatencyModel } from '../../model/model.js';
import { createPredictor } from '../../model/predictor.js';

/**
 * What predicting a whole pool costs (docs/architecture.md, "Router": the Predictive balancer may score every endpoint
 * of a small pool on each pick). For a pool of `endpoints`, `rounds` passes per timed run, median of
 * `runs` runs; reported per pool (µs) and per endpoint (ns). Printed, never asserted: machines differ.
 *
 *   forward          predictInto on ready feature vectors (the matmuls alone)
 *   featurize+fwd    TrainingSample-shaped input → vector → forward
 *   predictor hook   what the balancer calls: its features → input → vector → forward → ms, for one
 *                    request over the pool (relative scale: one extra forward pass per pool)
 *   predictBatch     the batch form over the pool's vectors
 *   tfjs batch       the same pool through tfjs (tfPredict), for comparison; only with `tfjs: true`
 *
 *   npm run build && node dist/model/bench.js [--model models/latency] [--endpoints 100] [--tfjs]
 */
export interface ForwardBenchRow {
  name: string;
  endpoints: number;
  usPerPool: number;
  nsPerEndpoint: number;
}

export interface ForwardBenchOptions {
  endpoints?: number;
  rounds?: number;
  runs?: number;
  seed?: number;
  /** Also time tfjs on the same batch (loads tfjs and its backend). */
  tfjs?: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** A plausible endpoint as the balancer sees it. */
export function randomFeatures(rnd: Random): PredictiveFeatures {
  const known = rnd() < 0.8;
  const f: PredictiveFeatures = {
    baselineMs: 1 + rnd() * 30,
    payloadKiB: rnd() * 50,
    latencyRatio: rnd() < 0.9 ? 0.5 + rnd() * 3 : NaN,
    samples: rnd() * 20,
    inflight: Math.floor(rnd() * 10),
    oldestInflightAgeMs: rnd() * 100,
    errorRate: rnd() * 0.05,
    hintLatencyMs: known ? 5 + rnd() * 50 : NaN,
    hintAgeMs: known ? rnd() * 5000 : Infinity,
    hintFreshness: known ? rnd() : 0,
    queueLength: known ? rnd() * 20 : NaN,
    cpu: known ? rnd() : NaN,
    reportedCpu: known ? rnd() : NaN,
    memory: known ? rnd() : NaN,
    typicalMs: 1 + rnd() * 10,
    aheadMs: rnd() * 50,
    serviceMs: NaN,
    estimateMs: NaN,
  };
  f.serviceMs = serviceEstimateMs(f, SIGNAL_DEFAULTS);
  f.estimateMs = builtinEstimateMs(f, SIGNAL_DEFAULTS);
  return f;
}

/** A model with this build's shape and random weights: the cost does not depend on the values. */
export function untrainedModel(seed = 1): LatencyModel {
  return {
    featuresVersion: FEATURES_VERSION,
    featureNames: [...FEATURE_NAMES],
    normalisation: {
      mean: new Array<number>(FEATURE_COUNT).fill(0),
      std: new Array<number>(FEATURE_COUNT).fill(1),
      min: new Array<number>(FEATURE_COUNT).fill(-1e6),
      max: new Array<number>(FEATURE_COUNT).fill(1e6),
    },
    target: { mean: 0, std: 1, min: -7, max: 7, quantile: 0.9, residualOf: RESIDUAL_INDEX },
    layers: initLayers({ inputs: FEATURE_COUNT, seed }),
  };
}

export async function runForwardBench(
  model: LatencyModel,
  options: ForwardBenchOptions = {},
): Promise<ForwardBenchRow[]> {
  const n = options.endpoints ?? 100;
  const rounds = options.rounds ?? 2000;
  const runs = options.runs ?? 7;
  const rnd = seededRandom(options.seed ?? 1);
  const fwd = new ForwardModel(model);
  const feats = Array.from({ length: n }, () => randomFeatures(rnd));
  const inputs = feats.map((f) => dispatchInput(f));
  // what one pick's request looks like to the hook: the same method and payload on every endpoint, and
  // a new request each pass (so the relative scale's idle reference is recomputed once per pool)
  const picks = [0, 1].map(() => {
    const req = randomFeatures(rnd);
    return feats.map((f) => ({ ...f, baselineMs: req.baselineMs, payloadKiB: req.payloadKiB }));
  });
  let pass = 0;
  const vectors = new Float64Array(n * FEATURE_COUNT);
  inputs.forEach((s, i) => featurizeInto(s, vectors, i * FEATURE_COUNT));
  const raw = new Float64Array(FEATURE_COUNT);
  const out = new Float64Array(2 * n);
  const hook = createPredictor(fwd);
  const ep = { id: 'e', address: 'e', inflight: 0 };
  const req = { method: '/bench.Svc/Get', payloadBytes: 2048 };
  let sink = 0;

  const cases: [string, () => void][] = [
    [
      'forward',
      () => {
        for (let i = 0; i < n; i++) fwd.predictInto(vectors, i * FEATURE_COUNT, out, 2 * i);
        sink += out[0] as number;
      },
    ],
    [
      'featurize+fwd',
      () => {
        for (let i = 0; i < n; i++) {
          featurizeInto(inputs[i] as FeatureInput, raw);
          fwd.predictInto(raw, 0, out, 2 * i);
        }
        sink += out[0] as number;
      },
    ],
    [
      'predictor hook',
      () => {
        const pool = picks[pass++ & 1] as PredictiveFeatures[];
        for (let i = 0; i < n; i++) sink += hook(ep, req, pool[i] as PredictiveFeatures) ?? 0;
      },
    ],
    [
      'predictBatch',
      () => {
        fwd.predictBatch(vectors, n, out);
        sink += out[0] as number;
      },
    ],
  ];
  const rows: ForwardBenchRow[] = [];
  for (const [name, fn] of cases) {
    for (let w = 0; w < rounds; w++) fn(); // warm-up: let the JIT settle
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      for (let k = 0; k < rounds; k++) fn();
      times.push(((performance.now() - t0) * 1000) / rounds);
    }
    const us = median(times);
    rows.push({ name, endpoints: n, usPerPool: us, nsPerEndpoint: (us * 1000) / n });
  }
  if (options.tfjs) {
    const { tfPredict } = await import('../../model/train.js');
    const tfRounds = Math.max(5, Math.floor(rounds / 20));
    for (let w = 0; w < tfRounds; w++) await tfPredict(model, vectors, n);
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      for (let k = 0; k < tfRounds; k++) sink += (await tfPredict(model, vectors, n))[0] as number;
      times.push(((performance.now() - t0) * 1000) / tfRounds);
    }
    const us = median(times);
    rows.push({ name: 'tfjs batch', endpoints: n, usPerPool: us, nsPerEndpoint: (us * 1000) / n });
  }
  if (Number.isNaN(sink)) rows.push({ name: '(NaN seen)', endpoints: n, usPerPool: NaN, nsPerEndpoint: NaN });
  return rows;
}

export function formatForwardRows(rows: ForwardBenchRow[]): string {
  const head = ['case', 'endpoints', 'µs/pool', 'ns/endpoint'];
  const body = rows.map((r) => [
    r.name,
    String(r.endpoints),
    r.usPerPool.toFixed(2),
    r.nsPerEndpoint.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = flag(args, 'model') ?? 'models/latency';
  const model = existsSync(dir) ? await loadModel(dir) : untrainedModel();
  const endpoints = Number(flag(args, 'endpoints') ?? 100);
  const rows = await runForwardBench(model, { endpoints, tfjs: args.includes('--tfjs') });
  console.log(`model: ${existsSync(dir) ? dir : 'untrained (same shape)'}`);
  console.log(formatForwardRows(rows));
}
