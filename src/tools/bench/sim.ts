import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { SibylError, errorMessage } from '../../util/errors.js';
import { formatScenario, formatSummary, formatTargets } from '../sim/report.js';
import {
  DEFAULT_POLICIES,
  checkPolicies,
  runScenario,
  type PolicyVariant,
  type ScenarioRuns,
} from '../sim/runner.js';
import { loadScenario, type Scenario } from '../sim/scenario.js';
import { ENVOY_LEAST_REQUEST } from '../sim/envoy-least-request.js';
import { evaluateDataPlaneTargets, evaluateTargets, type TargetReport } from '../sim/targets.js';
import { createQuantileFn } from '../../model/quantiles.js';
import { runGenerated } from './sim-generate.js';
import { compareTries } from './sim-tries.js';

const HELP = `usage: sibyl bench sim (--scenario FILE ... | --all | --generate N [--seed S]) [flags]

Replays scenario files (bench/scenarios/*.json, format in bench/scenarios/README.md and bench/scenarios/README.md)
through each policy on a virtual clock, and prints a table per scenario with the targets, or JSON.

  --scenario FILE      a scenario file (repeatable)
  --all                every *.json in --dir
  --dir DIR            where --all looks (default bench/scenarios)
  --generate N         draws N scenarios from the families of src/tools/sim/generate.ts and reports, per
                       target, the share of scenarios Predictive (and Predictive+model) meets it in,
                       and the worst case, whose scenario file is written under --out (default
                       bench/results/generated) with suite-S.json, the whole result
  --seed S             the generated suite's seed (default 1)
  --policies A,B,...   policies to compare (default ${DEFAULT_POLICIES.join(',')})
  --seeds N            seeds per policy: the scenario's seed and the N−1 after it (default 1);
                       figures are means, with 95% intervals
  --json               print the results as JSON: one object per scenario, an array with several
  --plot               write SVG plots (and the JSON results) under --out
  --out DIR            where plots go (default bench/results)
  --model DIR|none     adds the row Predictive+model: Predictive scoring with this latency model, as a
                       router does with the model the operator pushes (default models/latency; none:
                       no such row). The row Predictive is its built-in heuristic (no model).
  --check              exit 1 when a target is missed (Predictive's, or EnvoyLeastRequest's)
  --compare KIND       issue 17's hedging or deadline comparison on each --scenario (src/tools/bench/
                       sim-tries.ts), with Predictive+model (--model) over --seeds: KIND hedging (no
                       hedge, fixed delays swept, per-call predicted delays, 5% budget) or deadlines
                       (the pool's fixed timeout against predicted per-try deadlines with retry)
  --quantile Q,...     --compare hedging: the predicted delays' quantiles, the first compared (default 0.99,0.95)
  --duration S         --compare: run each scenario for S simulated seconds instead of its own
  --cancel-running     --compare: servers stop a cancelled try's work at once (scenario cancelRunning)`;

function intFlag(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SibylError('ERR_USAGE', `${flag} "${v}" must be an integer from ${min} to ${max}`);
  }
  return n;
}

const seedsFlag = (v: string | undefined): number => (v === undefined ? 1 : intFlag('--seeds', v, 1, 1000));

/** --policies, or the default set with the variants' rows; checked. */
function policiesFlag(v: string | undefined, variants: Readonly<Record<string, PolicyVariant>>): string[] {
  const policies = v
    ? v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
    : [...DEFAULT_POLICIES, ...Object.keys(variants)];
  checkPolicies(policies, variants);
  return policies;
}

/** The row Predictive+model: Predictive scoring with the latency model in `dir`. */
const MODEL_VARIANT = 'Predictive+model';

/**
 * Predictive with a model, loaded as the router loads the one the operator pushes (the shipped
 * default, models/latency, unless told otherwise): the simulator then measures what a router with a
 * model runs.
 */
export async function modelVariants(dir: string): Promise<Record<string, PolicyVariant>> {
  if (dir === 'none') return {};
  const { loadModel } = await import('../../model/artifact.js');
  const { createPredictor } = await import('../../model/predictor.js');
  const predict = createPredictor(await loadModel(dir));
  return { [MODEL_VARIANT]: { policy: 'Predictive', predict } };
}

export interface SimulateFilesOptions {
  policies: readonly string[];
  seeds: number;
  variants?: Readonly<Record<string, PolicyVariant>>;
  /** Write the plots and each scenario's JSON there. */
  out?: string;
  say?: (line: string) => void;
  /** Print each scenario's table and targets, and the summary, through `say`. */
  tables?: boolean;
}

/**
 * Every scenario file through every policy (`sibyl bench sim`, and `make bench`): the results with
 * Predictive's targets; with `out`, the plots (sim-p99.svg, <scenario>-cdf.svg, <scenario>-goodput.svg)
 * and <scenario>.json written there.
 */
export async function simulateFiles(
  files: readonly string[],
  o: SimulateFilesOptions,
): Promise<SimBenchResult[]> {
  const say = o.say ?? (() => undefined);
  const scenarios = await Promise.all(files.map((f) => loadScenario(f)));
  const results: SimBenchResult[] = [];
  for (const scenario of scenarios) {
    const t0 = performance.now();
    const runs = runScenario(scenario, { policies: o.policies, seeds: o.seeds, variants: o.variants });
    const targets = evaluateTargets(runs.report, scenario);
    const dataPlaneTargets = runs.report.policies[ENVOY_LEAST_REQUEST]
      ? evaluateDataPlaneTargets(runs.report, scenario)
      : undefined;
    results.push({ scenario, runs, targets, ...(dataPlaneTargets ? { dataPlaneTargets } : {}) });
    if (o.tables) {
      say(formatScenario(runs.report));
      say(formatTargets(targets));
      if (dataPlaneTargets) say(formatTargets(dataPlaneTargets));
      say(`(${((performance.now() - t0) / 1000).toFixed(1)}s)\n`);
    }
  }
  if (o.tables && results.length > 1) {
    say(
      formatSummary(
        results.map((r) => ({
          report: r.runs.report,
          targets: r.targets,
          ...(r.dataPlaneTargets ? { dataPlaneTargets: r.dataPlaneTargets } : {}),
        })),
        o.policies,
      ),
    );
  }
  if (o.out) {
    const { writePlots } = await import('../sim/plot.js');
    const written = await writePlots(
      results.map((r) => r.runs),
      o.out,
    );
    for (const r of results) {
      const file = path.join(o.out, `${r.runs.report.scenario}.json`);
      await writeFile(file, `${JSON.stringify(reportJson(r), null, 2)}\n`);
      written.push(file);
    }
    say(`wrote ${written.join(', ')}`);
  }
  return results;
}

export interface SimBenchResult {
  scenario: Scenario;
  runs: ScenarioRuns;
  targets: TargetReport;
  /** Issue 16's targets for EnvoyLeastRequest, when it ran. */
  dataPlaneTargets?: TargetReport;
}

/** A scenario's JSON: its report, Predictive's targets and EnvoyLeastRequest's when it ran. */
const reportJson = (r: SimBenchResult) => ({
  ...r.runs.report,
  targets: r.targets,
  ...(r.dataPlaneTargets ? { dataPlaneTargets: r.dataPlaneTargets } : {}),
});

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        scenario: { type: 'string', multiple: true },
        all: { type: 'boolean', default: false },
        dir: { type: 'string', default: 'bench/scenarios' },
        policies: { type: 'string' },
        seeds: { type: 'string' },
        json: { type: 'boolean', default: false },
        plot: { type: 'boolean', default: false },
        out: { type: 'string' },
        generate: { type: 'string' },
        seed: { type: 'string' },
        check: { type: 'boolean', default: false },
        model: { type: 'string', default: 'models/latency' },
        compare: { type: 'string' },
        quantile: { type: 'string' },
        duration: { type: 'string' },
        'cancel-running': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new SibylError('ERR_USAGE', `${errorMessage(e)}\n\n${HELP}`);
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.generate !== undefined) return generate(values);
  if (values.compare !== undefined) return compare(values);
  if (values.seed !== undefined) throw new SibylError('ERR_USAGE', '--seed goes with --generate');
  const files = [...(values.scenario ?? [])];
  if (values.all) {
    let names: string[];
    try {
      names = (await readdir(values.dir)).filter((f) => f.endsWith('.json')).sort();
    } catch (e) {
      throw new SibylError('ERR_USAGE', `--dir ${values.dir}: ${errorMessage(e)}`);
    }
    files.push(...names.map((f) => path.join(values.dir, f)));
  }
  if (files.length === 0) throw new SibylError('ERR_USAGE', `give --scenario FILE or --all\n\n${HELP}`);
  const variants = await modelVariants(values.model);
  const policies = policiesFlag(values.policies, variants);
  const seeds = seedsFlag(values.seeds);
  const results = await simulateFiles(files, {
    policies,
    seeds,
    variants,
    ...(values.plot ? { out: values.out ?? 'bench/results' } : {}),
    say: values.json ? (l) => console.error(l) : (l) => console.log(l),
    tables: !values.json,
  });
  const reports = results.map(reportJson);
  if (values.json) console.log(JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2));
  const missed = results.some((r) =>
    [r.targets, r.dataPlaneTargets].some((t) => t?.checks.some((c) => c.met === false)),
  );
  return values.check && missed ? 1 : 0;
}

/** `--generate N --seed S`: a generated suite instead of scenario files. */
async function generate(values: {
  generate?: string;
  seed?: string;
  scenario?: string[];
  all?: boolean;
  check?: boolean;
  plot?: boolean;
  policies?: string;
  seeds?: string;
  json?: boolean;
  out?: string;
  model: string;
}): Promise<number> {
  if (values.scenario?.length || values.all || values.check || values.plot) {
    throw new SibylError('ERR_USAGE', '--generate runs on its own: no --scenario, --all, --check or --plot');
  }
  const count = intFlag('--generate', values.generate as string, 1, 10_000);
  const seed = intFlag('--seed', values.seed ?? '1', 0, 2 ** 31 - 1);
  const variants = await modelVariants(values.model);
  const policies = policiesFlag(values.policies, variants);
  const candidates = ['Predictive', MODEL_VARIANT].filter((c) => policies.includes(c));
  if (candidates.length === 0) {
    throw new SibylError(
      'ERR_USAGE',
      `--generate judges Predictive or ${MODEL_VARIANT}: name one in --policies`,
    );
  }
  const suite = await runGenerated({
    count,
    seed,
    policies,
    seeds: seedsFlag(values.seeds),
    variants,
    candidates,
    out: values.out ?? 'bench/results/generated',
    say: values.json ? (l) => console.error(l) : (l) => console.log(l),
  });
  if (values.json) console.log(JSON.stringify(suite, null, 2));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(`sibyl bench sim: ${errorMessage(e)}`);
      process.exitCode = 2;
    },
  );
}

/** `--compare hedging|deadlines`: issue 17's comparisons on each --scenario (sim-tries.ts). */
async function compare(values: {
  compare?: string;
  scenario?: string[];
  seeds?: string;
  model: string;
  quantile?: string;
  duration?: string;
  'cancel-running'?: boolean;
  json?: boolean;
}): Promise<number> {
  const kind = values.compare;
  if (kind !== 'hedging' && kind !== 'deadlines') {
    throw new SibylError('ERR_USAGE', `--compare "${kind}" must be hedging or deadlines`);
  }
  if (!values.scenario?.length) throw new SibylError('ERR_USAGE', '--compare needs --scenario FILE');
  if (values.model === 'none') throw new SibylError('ERR_USAGE', '--compare needs a model (--model DIR)');
  const { loadModel } = await import('../../model/artifact.js');
  const { createPredictor } = await import('../../model/predictor.js');
  const model = await loadModel(values.model);
  const quantiles = values.quantile?.split(',').map((q) => {
    const n = Number(q);
    if (!(n >= 0.5 && n < 1)) throw new SibylError('ERR_USAGE', `--quantile "${q}" must lie in [0.5, 1)`);
    return n;
  });
  const durationS =
    values.duration === undefined ? undefined : intFlag('--duration', values.duration, 1, 86_400);
  const say = values.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const reports = [];
  for (const file of values.scenario) {
    const loaded = await loadScenario(file);
    const sc = values['cancel-running'] ? { ...loaded, cancelRunning: true } : loaded;
    if (durationS !== undefined && durationS <= sc.warmupS) {
      throw new SibylError(
        'ERR_USAGE',
        `--duration ${durationS} must exceed ${sc.name}'s warmupS (${sc.warmupS})`,
      );
    }
    reports.push(
      compareTries(durationS === undefined ? sc : { ...sc, durationS }, {
        kind,
        seeds: seedsFlag(values.seeds),
        // fresh hooks per scenario: each keeps scratch state only
        run: { policy: 'Predictive', predict: createPredictor(model), quantiles: createQuantileFn(model) },
        policyName: MODEL_VARIANT,
        ...(quantiles ? { quantiles } : {}),
        say,
      }),
    );
  }
  if (values.json) console.log(JSON.stringify(reports, null, 2));
  return 0;
}
