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
