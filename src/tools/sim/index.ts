// The discrete-event simulator (bench/scenarios/README.md): scenarios, one run, many runs, targets, plots, samples.
export {
  parseScenario,
  loadScenario,
  expandServers,
  capacityRps,
  meanCostMs,
  type Scenario,
  type EventSpec,
  type MethodSpec,
  type ServerGroup,
} from './scenario.js';
export { simulate, ORACLE, type RunOptions, type RunObserver } from './engine.js';
export { FleetLeastRequest, FLEET_LEAST_REQUEST } from './fleet-least-request.js';
export type { PolicyFigures, RunResult, WindowFigures } from './metrics.js';
export {
  runScenario,
  summarise,
  DEFAULT_POLICIES,
  type ScenarioReport,
  type ScenarioRuns,
  type PolicySummary,
} from './runner.js';
export { evaluateTargets, BASELINES, type TargetReport, type Check } from './targets.js';
export { collectSamples, type CollectOptions } from './samples.js';
