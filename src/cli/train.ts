import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadModel, saveModel, modelVersion } from '../model/artifact.js';
import { MIN_CALIBRATION_SAMPLES, P99, calibrate, scoredSamples, splitScored } from '../model/calibrate.js';
import { evaluate, usableSample } from '../model/evaluate.js';
import { coverage } from '../model/quantiles.js';
import { sampleProblem } from '../model/features.js';
import type { HoldoutMetrics } from '../model/model.js';
import type { TrainingSample } from '../model/sample.js';
import { trainModel, TRAIN_DEFAULTS, type TrainOptions } from '../model/train.js';
import type { BackendChoice } from '../model/tf.js';
import type { Scenario } from '../tools/sim/scenario.js';
import { SibylError, errorMessage } from '../util/errors.js';
import { numberFlag, parseFlags } from './flags.js';

const HELP = `usage: sibyl train (--simulate [--scenarios PATH] [--samples N] | --samples FILE) [flags]

Trains the latency model (docs/architecture.md, "Model") and writes model.json, weights.bin and features.json.

  --simulate             train on simulator data: every scenario under --scenarios, routed by each of
                         --policies in turn (the shipped default model: \`make model\`)
  --scenarios PATH       a scenario file, or a directory of them (*.json; default bench/scenarios)
  --policies A,B,…       policies routing the simulated calls (default ${DEFAULT_POLICIES().join(',')})
  --samples N            with --simulate: samples in all, spread over scenarios × policies (default 60000)
  --samples FILE         without --simulate: JSON lines, one TrainingSample (src/model/sample.ts) per line
  --out DIR              where to write the model (default models/latency)
  --seed S               seeds the simulation, the holdout draw and training (default 1)
  --epochs N             (default ${TRAIN_DEFAULTS.epochs})
  --batch-size N         (default ${TRAIN_DEFAULTS.batchSize})
  --learning-rate X      Adam's step size (default ${TRAIN_DEFAULTS.learningRate})
  --holdout F            share of samples held out for evaluation (default ${TRAIN_DEFAULTS.holdoutFraction})
  --calibrate            do not train: calibrate the per-call quantiles of the model at --out on these
                         samples (use a --seed it was not trained with), half to fit, half to measure
                         p99 coverage, and write it back (src/model/quantiles.ts)
  --backend B            auto | tensorflow | wasm | cpu (default auto: tfjs-node if installed, else WASM)
  --json                 print the summary as one JSON object`;

function DEFAULT_POLICIES(): string[] {
  return ['RoundRobin', 'LeastRequest', 'PeakEwma', 'Predictive'];
}

const DEFAULT_SIM_SAMPLES = 60_000;

/**
 * The simulator's sample export (src/tools/sim: collectSamples, loadScenario); an interface so tests can
 * stand in for it.
 */
export interface SimulatorApi {
  collectSamples(
    scenario: Scenario,
    options: { seed: number; policy: string; maxSamples: number },
  ): TrainingSample[];
  loadScenario(file: string): Promise<Scenario>;
}

/** The simulator, loaded only when --simulate asks for it. */
async function loadSimulator(): Promise<SimulatorApi> {
  const [{ collectSamples }, { loadScenario }] = await Promise.all([
    import('../tools/sim/samples.js'),
    import('../tools/sim/scenario.js'),
  ]);
  return { collectSamples, loadScenario };
}

/** The scenario files under `p`: the file itself, or a directory's *.json in name order. */
export async function scenarioFiles(p: string): Promise<string[]> {
  let st;
  try {
    st = await stat(p);
  } catch (e) {
    throw new SibylError('ERR_USAGE', `--scenarios ${p}: ${errorMessage(e)}`);
  }
  if (!st.isDirectory()) return [p];
  const files = (await readdir(p))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(p, f));
  if (files.length === 0) throw new SibylError('ERR_USAGE', `--scenarios ${p}: no *.json scenario files`);
  return files;
}

export interface SimulatedSamples {
  samples: TrainingSample[];
  source: string;
  runs: { scenario: string; policy: string; samples: number }[];
}

/**
 * Samples from every (scenario, policy) pair, `total` spread evenly, each run seeded apart
 * (seed + 1000 · scenario index + policy index). Mixing policies matters: a model trained only on the
 * calls one policy placed has seen only the states that policy lets happen.
 */
export async function simulatedSamples(
  sim: SimulatorApi,
  files: readonly string[],
  policies: readonly string[],
  total: number,
  seed: number,
): Promise<SimulatedSamples> {
  const per = Math.max(1, Math.ceil(total / (files.length * policies.length)));
  const samples: TrainingSample[] = [];
  const runs: SimulatedSamples['runs'] = [];
  for (const [i, file] of files.entries()) {
    const scenario = await sim.loadScenario(file);
    for (const [j, policy] of policies.entries()) {
      const got = await sim.collectSamples(scenario, { seed: seed + 1000 * i + j, policy, maxSamples: per });
      for (const s of got) samples.push(s);
      runs.push({ scenario: path.basename(file, '.json'), policy, samples: got.length });
    }
  }
  const names = files.map((f) => path.basename(f, '.json')).join(', ');
  return { samples, runs, source: `simulator: ${names} × ${policies.join(', ')}; seed ${seed}` };
}

/**
 * Reads JSON lines of TrainingSample. JSON has no Infinity: a null telemetryAgeMs means "never"
 * (Infinity), a null cpu, memory or queueLength means absent. A bad line is an ERR_USAGE naming it.
 */
export async function readSamplesFile(file: string): Promise<TrainingSample[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SibylError('ERR_USAGE', `--samples ${file}: ${errorMessage(e)}`);
  }
  const out: TrainingSample[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new SibylError('ERR_USAGE', `${file}:${i + 1}: not JSON (${errorMessage(e)})`);
    }
    if (typeof o === 'object' && o !== null) {
      if (o.telemetryAgeMs === null) o.telemetryAgeMs = Infinity;
      for (const k of ['cpu', 'memory', 'queueLength']) if (o[k] === null) delete o[k];
    }
    const problem = sampleProblem(o);
    if (problem) throw new SibylError('ERR_USAGE', `${file}:${i + 1}: ${problem}`);
    out.push(o as unknown as TrainingSample);
  });
  return out;
}

/** --calibrate: the model at `dir` gets its quantile scores from `samples`, and is written back. */
async function calibrateAt(
  dir: string,
  samples: readonly TrainingSample[],
  source: string,
  seed: number,
  json: boolean,
): Promise<number> {
  const model = await loadModel(dir);
  const usable = samples.filter((s) => usableSample(s));
  const cal = calibrate(model, usable, 'holdout', seed);
  if (!cal) {
    throw new SibylError(
      'ERR_USAGE',
      `--calibrate: ${usable.length} usable samples; at least ${MIN_CALIBRATION_SAMPLES} are needed`,
    );
  }
  const before = coverage(splitScored(scoredSamples(model, usable), seed).test, P99, model.calibration);
  model.calibration = cal.calibration;
  model.metrics = { ...(model.metrics ?? evaluate(model, usable)), p99Coverage: cal.p99Coverage };
  const written = await saveModel(model, dir);
  const version = modelVersion(model);
  if (json) {
    console.log(JSON.stringify({ out: dir, version, source, before, ...cal }));
    return 0;
  }
  console.log(`samples: ${usable.length} usable, from ${source}`);
  console.log(
    `p99 coverage on ${cal.tested} samples not used to fit: ${(100 * cal.p99Coverage).toFixed(2)}% ` +
      `(before: ${(100 * before).toFixed(2)}%); scores ${cal.calibration.levels
        .map((q, k) => `${q}: ${(cal.calibration.scores[k] as number).toFixed(3)}`)
        .join(', ')}`,
  );
  for (const p of written) console.log(`wrote ${p}`);
  console.log(`model version ${version}`);
  return 0;
}

function summary(m: HoldoutMetrics): string {
  const parts = [
    `MAE of ln latency ${m.maeLog.toFixed(4)} (a typical error of ×${Math.exp(m.maeLog).toFixed(3)})`,
    `RMSE ${m.rmseLog.toFixed(4)}`,
    `baseline (predict the mean) ${m.baselineMaeLog.toFixed(4)}`,
  ];
  if (m.p90Coverage !== undefined) parts.push(`p90 coverage ${(100 * m.p90Coverage).toFixed(1)}%`);
  if (m.p99Coverage !== undefined) parts.push(`calibrated p99 coverage ${(100 * m.p99Coverage).toFixed(2)}%`);
  return parts.join(', ');
}

export async function run(argv: string[]): Promise<number> {
  const values = parseFlags(
    argv,
    {
      simulate: { type: 'boolean', default: false },
      scenarios: { type: 'string', default: 'bench/scenarios' },
      policies: { type: 'string' },
      samples: { type: 'string' },
      out: { type: 'string', default: 'models/latency' },
      seed: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      'learning-rate': { type: 'string' },
      holdout: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
      calibrate: { type: 'boolean', default: false },
    },
    HELP,
  );
  if (!values) return 0;
  const backend = values.backend as BackendChoice;
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(backend)) {
    throw new SibylError('ERR_USAGE', `--backend "${values.backend}" must be auto, tensorflow, wasm or cpu`);
  }
  const seed = numberFlag(values.seed, 'seed', 0, 2 ** 32 - 1, true) ?? TRAIN_DEFAULTS.seed;
  const options: TrainOptions = {
    seed,
    epochs: numberFlag(values.epochs, 'epochs', 1, 10_000, true),
    batchSize: numberFlag(values['batch-size'], 'batch-size', 1, 1_000_000, true),
    learningRate: numberFlag(values['learning-rate'], 'learning-rate', 1e-6, 1),
    holdoutFraction: numberFlag(values.holdout, 'holdout', 0.01, 0.9),
    backend,
  };

  let samples: TrainingSample[];
  let source: string;
  let runs: SimulatedSamples['runs'] | undefined;
  if (values.simulate) {
    const total = numberFlag(values.samples, 'samples', 100, 100_000_000, true) ?? DEFAULT_SIM_SAMPLES;
    const policies =
      values.policies
        ?.split(',')
        .map((p) => p.trim())
        .filter(Boolean) ?? DEFAULT_POLICIES();
    if (policies.length === 0) throw new SibylError('ERR_USAGE', '--policies lists no policy');
    const sim = await loadSimulator();
    const files = await scenarioFiles(values.scenarios);
    ({ samples, source, runs } = await simulatedSamples(sim, files, policies, total, seed));
  } else {
    if (values.samples === undefined) {
      throw new SibylError(
        'ERR_USAGE',
        `say where the samples come from: --simulate or --samples FILE\n\n${HELP}`,
      );
    }
    samples = await readSamplesFile(values.samples);
    source = `file: ${path.basename(values.samples)}`;
  }
  options.source = source;
  if (values.calibrate) return calibrateAt(values.out, samples, source, seed, values.json);

  const result = await trainModel(samples, options);
  const written = await saveModel(result.model, values.out);
  const version = modelVersion(result.model);
  const t = result.model.training!;
  if (values.json) {
    console.log(
      JSON.stringify({
        out: values.out,
        version,
        metrics: result.metrics,
        training: t,
        durationMs: Math.round(result.durationMs),
        ...(runs ? { runs } : {}),
      }),
    );
    return 0;
  }
  console.log(`samples: ${samples.length} from ${source}`);
  console.log(
    `trained on ${t.samples}, held out ${t.holdoutSamples}, left out ${t.droppedSamples} ` +
      `(failed calls and invalid latencies); ${t.epochs} epochs on ${t.backend} in ${(result.durationMs / 1000).toFixed(1)} s`,
  );
  console.log(`holdout: ${summary(result.metrics)}`);
  for (const p of written) console.log(`wrote ${p}`);
  console.log(`model version ${version}`);
  return 0;
}
