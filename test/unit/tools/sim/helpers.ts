import type { ScenarioReport } from '../../../../src/tools/sim/runner.js';
import { parseScenario, type Scenario } from '../../../../src/tools/sim/scenario.js';

/** A small scenario (one method, 5 ms, no events) with `patch` applied on top. */
export function scenario(patch: Record<string, unknown> = {}): Scenario {
  return parseScenario({
    name: 'test',
    seed: 7,
    durationS: 10,
    warmupS: 1,
    routers: 2,
    load: { utilization: 0.5 },
    deadlineMs: 1000,
    telemetry: { metricsIntervalS: 1, reportIntervalS: 1 },
    methods: [{ name: '/t.S/Get', share: 1, costMs: 5, payloadBytes: [100, 1000] }],
    servers: [{ count: 4, speed: 1, concurrency: 2 }],
    events: [],
    ...patch,
  });
}

/** A report with the given p99All (and error rates) per policy, every other figure 1. */
export function report(p99: Record<string, number>, errorRate: Record<string, number> = {}): ScenarioReport {
  const policies: ScenarioReport['policies'] = {};
  for (const [name, v] of Object.entries(p99)) {
    policies[name] = {
      p50Ms: 1,
      p99Ms: v,
      p999Ms: v,
      p99AllMs: v,
      meanMs: 1,
      errorRate: errorRate[name] ?? 0,
      goodputRps: 1,
      maxInflight: 1,
      share: [],
      ci95: {} as never,
    };
  }
  return { scenario: 't', policies, seeds: [1], capacityRps: 1 };
}
