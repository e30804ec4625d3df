import { balancerNames, type PredictFn } from '../../balancer/index.js';
import { SibylError } from '../../util/errors.js';
import { ORACLE, simulate } from './engine.js';
import { DATA_PLANE_POLICIES } from './data-planes.js';
import { FLEET_LEAST_REQUEST } from './fleet-least-request.js';
import { CDF_POINTS, type PolicyFigures, type RunResult, type WindowFigures } from './metrics.js';
import { capacityRps, type Scenario } from './scenario.js';
import { meanInterval } from './stats.js';

/** Every policy is compared with one configuration (the router's): nothing is tuned per scenario. */
export const DEFAULT_POLICIES = [
  ORACLE,
  'RoundRobin',
  'LeastRequest',
  'PeakEwma',
  'Prequal',
  'Predictive',
  ...DATA_PLANE_POLICIES,
];

const FIGURES = [
  'p50Ms',
  'p99Ms',
  'p999Ms',
  'p99AllMs',
  'meanMs',
  'errorRate',
  'goodputRps',
  'maxInflight',
] as const;
type Figure = (typeof FIGURES)[number];

/**
 * One policy's figures over the seeds: the fixed shape's fields are the means; `ci95` gives each one's
 * 95% interval (Student's t over seeds), `peak` the steady overload after a ramp (means).
 */
export interface PolicySummary extends PolicyFigures {
  ci95: Record<Figure, [number, number]>;
  peak?: WindowFigures;
  /** For overload scenarios with a limiter: p99 of successful calls at 10% load, same policy and seeds. */
  unloadedP99Ms?: number;
  /** Probes sent per call (mean over seeds), for a policy that sends any (Balancer.probeTarget). */
  probeRate?: number;
}

/** `sibyl bench sim --json`: bench/scenarios/README.md's object, plus seeds, capacity and intervals. */
export interface ScenarioReport {
  scenario: string;
  policies: Record<string, PolicySummary>;
  seeds: number[];
  capacityRps: number;
}

export interface ScenarioRuns {
  report: ScenarioReport;
  /** Each policy's runs, one per seed (for plots). */
  runs: Record<string, RunResult[]>;
}

export interface RunScenarioOptions {
  policies?: readonly string[];
  /** How many seeds: the scenario's seed, then seed + 1, … */
  seeds?: number;
  onRun?: (policy: string, seed: number, ms: number) => void;
  /**
   * Further rows: a name (as listed in `policies`) for a registered policy run with given options, the
   * same in every scenario — e.g. `Predictive+model`, Predictive scoring with the shipped model.
   */
  variants?: Readonly<Record<string, PolicyVariant>>;
}

export interface PolicyVariant {
  policy: string;
  /** The policy's config (JSON options); its defaults when absent. */
  config?: Record<string, unknown>;
  /** A latency model's predict function (BalancerDeps.predict). */
  predict?: PredictFn;
}

export function checkPolicies(
  policies: readonly string[],
  variants: Readonly<Record<string, PolicyVariant>> = {},
): void {
  const known = [
    ORACLE,
    FLEET_LEAST_REQUEST,
    ...DATA_PLANE_POLICIES,
    ...balancerNames(),
    ...Object.keys(variants),
  ];
  for (const p of policies) {
    if (!known.includes(p)) {
      throw new SibylError('ERR_USAGE', `unknown policy "${p}" (known: ${known.join(', ')})`);
    }
  }
}

export function runScenario(scenario: Scenario, options: RunScenarioOptions = {}): ScenarioRuns {
  const policies = options.policies ?? DEFAULT_POLICIES;
  checkPolicies(policies, options.variants);
  const n = Math.max(1, Math.floor(options.seeds ?? 1));
  const seeds = Array.from({ length: n }, (_, i) => scenario.seed + i);
  const runs: Record<string, RunResult[]> = {};
  const report: ScenarioReport = {
    scenario: scenario.name,
    policies: {},
    seeds,
    capacityRps: capacityRps(scenario),
  };
  const unloaded: Scenario | undefined =
    scenario.load.ramp && scenario.concurrency
      ? { ...scenario, load: { utilization: 0.1 }, concurrency: undefined }
      : undefined;
  for (const policy of policies) {
    const v = options.variants?.[policy];
    const run = (sc: Scenario, seed: number) =>
      simulate(sc, {
        policy: v?.policy ?? policy,
        seed,
        ...(v?.config ? { balancerConfig: v.config } : {}),
        ...(v?.predict ? { predict: v.predict } : {}),
      });
    const rs: RunResult[] = [];
    for (const seed of seeds) {
      const t0 = performance.now();
      rs.push(run(scenario, seed));
      options.onRun?.(policy, seed, performance.now() - t0);
    }
    runs[policy] = rs;
    const summary = summarise(rs);
    if (unloaded) {
      const p99 = seeds.map((seed) => run(unloaded, seed).p99Ms);
      summary.unloadedP99Ms = meanInterval(p99).mean;
    }
    report.policies[policy] = summary;
  }
  return { report, runs };
}

/** Means and 95% intervals over seeds. */
function summarise(rs: readonly RunResult[]): PolicySummary {
  const ci95 = {} as Record<Figure, [number, number]>;
  const means = {} as Record<Figure, number>;
  for (const f of FIGURES) {
    const iv = meanInterval(rs.map((r) => r[f]));
    means[f] = iv.mean;
    ci95[f] = [iv.lo, iv.hi];
  }
  const servers = rs[0]?.share.length ?? 0;
  const share = Array.from(
    { length: servers },
    (_, i) => rs.reduce((a, r) => a + (r.share[i] ?? 0), 0) / rs.length,
  );
  const s: PolicySummary = { ...means, share, ci95 };
  const probeRate = rs.reduce((a, r) => a + r.probeRate, 0) / rs.length;
  if (probeRate > 0) s.probeRate = probeRate;
  const peaks = rs.map((r) => r.peak).filter((p): p is WindowFigures => p !== undefined);
  if (peaks.length > 0) {
    const avg = (k: keyof WindowFigures) => meanInterval(peaks.map((p) => p[k])).mean;
    s.peak = {
      fromS: peaks[0]!.fromS,
      toS: peaks[0]!.toS,
      offeredRps: avg('offeredRps'),
      goodputRps: avg('goodputRps'),
      p99Ms: avg('p99Ms'),
      p99AllMs: avg('p99AllMs'),
      errorRate: avg('errorRate'),
      shedRate: avg('shedRate'),
      shedMaxMs: Math.max(...peaks.map((p) => p.shedMaxMs)),
    };
  }
  return s;
}

/** The latency CDF of a policy, averaged over seeds quantile by quantile. */
export function meanCdf(rs: readonly RunResult[]): { p: number; ms: number }[] {
  return CDF_POINTS.map((p, i) => ({ p, ms: rs.reduce((a, r) => a + (r.cdf[i] as number), 0) / rs.length }));
}
