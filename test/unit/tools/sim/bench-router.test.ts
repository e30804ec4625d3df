import {
  formatRouterBench,
  parseRouterBenchArgs,
  ratio,
  requestsTotal,
  summariseCalls,
} from '../../../../src/tools/bench/router.js';
import {
  formatOverload,
  summariseOverload,
  type PriorityCall,
} from '../../../../src/tools/bench/router-overload.js';

describe('sibyl bench router, pure parts', () => {
  it('summarises calls: failures count at the deadline in p99 all, not in the OK quantiles', () => {
    const latencyMs = Array.from({ length: 1000 }, (_, i) => i + 1);
    const codes = latencyMs.map((_, i) => (i % 50 === 0 ? 14 : 0)); // 2% UNAVAILABLE, fast
    const f = summariseCalls({ latencyMs, codes }, 5000, 1100);
    expect(f.calls).toBe(1000);
    expect(f.errors).toBe(20);
    expect(f.errorRate).toBeCloseTo(0.02, 12);
    expect(f.statuses).toEqual({ OK: 980, UNAVAILABLE: 20 });
    expect(f.p99Ms).toBeLessThanOrEqual(1000);
    expect(f.p99AllMs).toBe(5000); // 2% at the deadline: the p99 of all calls is one of them
    expect(f.extraLoad).toBeCloseTo(0.1, 12);
    expect(summariseCalls({ latencyMs: [], codes: [] }, 1000, 0).errorRate).toBeNaN();
  });

  it("reads the backends' request counters from a Prometheus exposition", () => {
    const text = [
      '# HELP sibyl_backend_requests_total Calls received.',
      '# TYPE sibyl_backend_requests_total counter',
      'sibyl_backend_requests_total{method="/sibyl.demo.v1.Demo/Echo",code="0"} 120',
      'sibyl_backend_requests_total{method="/sibyl.demo.v1.Demo/Echo",code="14"} 5',
      'sibyl_backend_inflight 3',
    ].join('\n');
    expect(requestsTotal(text)).toBe(125);
  });

  it('prints on ÷ off ratios', () => {
    expect(ratio(1, 4)).toBe('×0.25');
    expect(ratio(1, 0)).toBe('-');
    const fig = summariseCalls({ latencyMs: [1, 2, 3], codes: [0, 0, 0] }, 1000, 3);
    const text = formatRouterBench({
      env: {
        node: 'v20',
        cpus: 2,
        durationS: 1,
        rps: 3,
        repeat: 1,
        backends: 2,
        latencyMs: 1,
        tailSigma: 1,
        deadlineMs: 1000,
        loadAverage: { before: 1, after: 1 },
      },
      comparisons: [{ name: 'hedging', setup: 'x', off: fig, on: fig }],
    });
    expect(text).toContain('on/off');
    expect(text).toContain('×1.00');
  });
});

describe('sibyl bench router, overload section', () => {
  it('sums up calls at twice the capacity: goodput, admitted p99 against unloaded, success by priority', () => {
    const calls: PriorityCall[] = [];
    for (let i = 0; i < 300; i++) {
      const priority = (['critical', 'default', 'sheddable'] as const)[i % 3]!;
      const shed = priority === 'sheddable' || (priority === 'default' && i % 2 === 0);
      calls.push(
        shed ? { priority, code: 8, latencyMs: 2 } : { priority, code: 0, latencyMs: 100 + (i % 100) },
      );
    }
    const f = summariseOverload('QueueDelay', calls, {
      capacityRps: 20,
      offeredRps: 40,
      unloadedP99Ms: 150,
      seconds: 5,
    });
    expect(f.statuses).toEqual({ OK: 150, RESOURCE_EXHAUSTED: 150 });
    expect(f.goodputRps).toBe(30);
    expect(f.goodputShare).toBe(1.5);
    expect(f.success).toEqual({ critical: 1, default: 0.5, sheddable: 0 });
    expect(f.admittedP99Ms).toBeGreaterThanOrEqual(195);
    expect(f.admittedRatio).toBeCloseTo(f.admittedP99Ms / 150, 12);
    expect(f.shedP95Ms).toBe(2);
    const lines = formatOverload({ setup: 's', settings: [f] });
    expect(lines[0]).toBe('overload: s');
    expect(lines[1]!.split(/\s{2,}/).slice(1)).toEqual([
      'capacity/s',
      'goodput/s',
      'of capacity',
      'unloaded p99',
      'admitted p50',
      'p99',
      '× unloaded',
    ]);
    expect(lines.at(-1)).toContain('success critical 100.0%, default 50.0%, sheddable 0.0%');
  });

  it('runs one section with --only, and names the sections it knows', () => {
    expect(parseRouterBenchArgs(['--only', 'overload'])?.only).toBe('overload');
    expect(() => parseRouterBenchArgs(['--only', 'limits'])).toThrow(/breakers, hedging, overload/);
  });
});
