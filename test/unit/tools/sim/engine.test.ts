import type { Endpoint } from '../../../../src/balancer/index.js';
import { simulate, type RunObserver } from '../../../../src/tools/sim/engine.js';
import { collectSamples } from '../../../../src/tools/sim/samples.js';
import { FLEET_LEAST_REQUEST } from '../../../../src/tools/sim/fleet-least-request.js';
import type { SimRouter } from '../../../../src/tools/sim/router.js';
import { scenario } from './helpers.js';

const POLICIES = ['RoundRobin', 'LeastRequest', 'PeakEwma', 'Prequal', 'Predictive'];

describe('simulate', () => {
  it('is deterministic for a seed, and the seed matters', () => {
    const s = scenario();
    const a = simulate(s, { policy: 'Predictive', seed: 3 });
    expect(simulate(s, { policy: 'Predictive', seed: 3 })).toEqual(a);
    expect(simulate(s, { policy: 'Predictive', seed: 4 }).p99AllMs).not.toBe(a.p99AllMs);
    expect(a.calls).toBeGreaterThan(1000);
    expect(a.share.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 9);
  });

  it('offers every policy the same calls at a seed', () => {
    const s = scenario();
    const calls = POLICIES.map((policy) => simulate(s, { policy, seed: 5 }).timeline.offered);
    for (const c of calls) expect(c).toEqual(calls[0]);
  });

  it('the Oracle does at least as well as every policy on a mixed pool', () => {
    const s = scenario({
      servers: [
        { count: 3, speed: 1, concurrency: 2 },
        { count: 3, speed: 0.25, concurrency: 2 },
      ],
      load: { utilization: 0.6 },
      durationS: 20,
    });
    const oracle = simulate(s, { policy: 'Oracle' }).p99AllMs;
    for (const policy of POLICIES) expect(oracle).toBeLessThanOrEqual(simulate(s, { policy }).p99AllMs);
  });

  it('Predictive does not herd on the lagged telemetry every router shares', () => {
    const s = scenario({
      routers: 4,
      load: { utilization: 0.7 },
      servers: [
        { count: 4, speed: 1, concurrency: 4 },
        { count: 2, speed: 0.5, concurrency: 4 },
      ],
      durationS: 15,
    });
    const oracle = simulate(s, { policy: 'Oracle' });
    const predictive = simulate(s, { policy: 'Predictive' });
    expect(predictive.p50Ms).toBeLessThan(1.3 * oracle.p50Ms);
    expect(predictive.p99AllMs).toBeLessThan(1.5 * oracle.p99AllMs);
  });

  it('FleetLeastRequest sends each call where the whole fleet has the fewest calls open', () => {
    const s = scenario({ routers: 4, load: { utilization: 0.9 } });
    const routers = new Set<SimRouter>();
    let checked = 0;
    let wrong = 0;
    const observer: RunObserver = {
      done: false,
      onPick(router, ep, _c, now) {
        routers.add(router);
        if (routers.size < 4 || now < 1000) return;
        const total = (i: number) => [...routers].reduce((n, r) => n + r.endpoints[i]!.inflight, 0);
        const least = Math.min(...router.endpoints.map((e) => total(e.index)));
        checked++;
        if (total(ep.index) !== least) wrong++;
      },
      onDispatch: () => undefined,
      onEnd: () => undefined,
    };
    const fleet = simulate(s, { policy: FLEET_LEAST_REQUEST, observer });
    expect(checked).toBeGreaterThan(1000);
    expect(wrong).toBe(0);
    // knowing the other routers' calls beats knowing only one's own
    expect(fleet.p99AllMs).toBeLessThan(simulate(s, { policy: 'LeastRequest' }).p99AllMs);
  });

  it('counts a fast failure at the deadline in p99AllMs, never as a fast success', () => {
    const s = scenario({ events: [{ server: 0, errorRate: 1, errorLatencyMs: 1 }] });
    const r = simulate(s, { policy: 'RoundRobin' });
    expect(r.errorRate).toBeCloseTo(0.25, 2);
    expect(r.p99AllMs).toBe(1000);
    expect(r.p99Ms).toBeLessThan(30); // successful calls are fast
  });

  it('times a call out at its deadline, counted there too', () => {
    const s = scenario({ events: [{ server: 1, fromS: 2, toS: 8, latencyMs: 5000 }], deadlineMs: 300 });
    const r = simulate(s, { policy: 'RoundRobin' });
    expect(r.errorRate).toBeGreaterThan(0.05);
    expect(r.p99AllMs).toBe(300);
    expect(r.p999Ms).toBeLessThanOrEqual(300);
  });

  it('routers see telemetry only as the operator pushed it, late', () => {
    const s = scenario({ telemetry: { metricsIntervalS: 1, reportIntervalS: 0.5 } });
    const ages: number[] = [];
    let before = 0;
    const observer: RunObserver = {
      done: false,
      onDispatch(_r, ep: Endpoint, _c, now) {
        if (!ep.hints) before++;
        else ages.push(now - (ep.hints.atMs as number));
      },
      onEnd() {},
    };
    simulate(s, { policy: 'RoundRobin', observer });
    expect(before).toBeGreaterThan(0); // nothing before the first scrape is pushed
    expect(Math.min(...ages)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...ages)).toBeLessThanOrEqual(1500);
    expect(ages.reduce((a, b) => a + b, 0) / ages.length).toBeGreaterThan(250);
  });

  it('sheds at once over the limit when the scenario sets a limiter', () => {
    const s = scenario({
      load: { utilization: 2 },
      concurrency: { algorithm: 'Fixed', initialLimit: 2, maxLimit: 2 },
    });
    const r = simulate(s, { policy: 'LeastRequest' });
    expect(r.shedRate).toBeGreaterThan(0.3);
    expect(r.shedMaxMs).toBe(0);
    expect(r.maxInflight).toBeLessThanOrEqual(4);
  });
});

describe('probes in the simulator', () => {
  // one server of four 10× slower from 2 s to 8 s
  const s = scenario({ events: [{ server: 0, fromS: 2, toS: 8, slowdown: 10 }], routers: 2 });
  function run(probeMode: 'shadow' | 'call') {
    let toSlow = 0;
    const dispatched = { calls: 0, probes: 0 };
    const ended = { calls: 0, probes: 0 };
    const observer: RunObserver = {
      done: false,
      onDispatch(_r, ep, c, now) {
        dispatched[c.probe ? 'probes' : 'calls']++;
        if (!c.probe && ep.index === 0 && now >= 3000 && now < 8000) toSlow++;
      },
      onEnd(_r, c) {
        ended[c.probe ? 'probes' : 'calls']++;
      },
    };
    const r = simulate(s, { policy: 'Predictive', balancerConfig: { probeMode }, observer });
    return { r, toSlow, dispatched, ended };
  }

  it('copies calls to the server the policy explores, within the budget, and counts them in no client figure', () => {
    const shadow = run('shadow');
    const call = run('call');
    expect(call.r.probeRate).toBe(0);
    expect(call.dispatched.probes).toBe(0);
    expect(shadow.r.probeRate).toBeGreaterThan(0.002);
    expect(shadow.r.probeRate).toBeLessThan(0.06); // 5% of calls, and a reserve of 1/s per router
    // clients' calls only in the figures: the same calls as without probes
    expect(shadow.r.calls).toBe(call.r.calls);
    expect(shadow.r.timeline.offered).toEqual(call.r.timeline.offered);
    expect(shadow.r.share.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    // the observer (training samples) sees every probe start and end, told apart from calls
    expect(shadow.dispatched.probes).toBeGreaterThan(0);
    expect(shadow.ended).toEqual(shadow.dispatched);
    expect(shadow.dispatched.calls).toBe(call.dispatched.calls);
    // exploring with clients' calls sends more of them to the slowed server than probing does
    expect(shadow.toSlow).toBeLessThan(call.toSlow);
    expect(simulate(s, { policy: 'Predictive' })).toEqual(shadow.r); // deterministic; shadow by default
  });

  it('a probe takes a slot of the router’s limiter only if one is free at sheddable priority', () => {
    const rate = (limit?: number) =>
      simulate(
        scenario(limit ? { concurrency: { algorithm: 'Fixed', initialLimit: limit, maxLimit: limit } } : {}),
        {
          policy: 'Predictive',
        },
      ).probeRate;
    // limit 2: a sheddable call may hold one of its slots, and the call a probe copies holds one
    expect(rate(2)).toBe(0);
    console.log('RATES', rate(4), rate(8), rate());
    expect(rate(4)).toBeLessThan(rate());
  });

  it('policies that name no probe target send none', () => {
    expect(simulate(s, { policy: 'PeakEwma' }).probeRate).toBe(0);
  });
});

describe('collectSamples', () => {
  it('returns up to maxSamples finished samples of what a router knew, deterministically', () => {
    const s = scenario({ events: [{ server: 0, fromS: 2, toS: 6, errorRate: 0.5 }] });
    const a = collectSamples(s, { seed: 2, policy: 'RoundRobin', maxSamples: 500 });
    expect(a.length).toBeGreaterThan(400);
    expect(a.length).toBeLessThanOrEqual(500);
    expect(collectSamples(s, { seed: 2, policy: 'RoundRobin', maxSamples: 500 })).toEqual(a);
    for (const x of a) {
      expect(x.latencyMs).toBeGreaterThan(0);
      expect(x.inflight).toBeGreaterThanOrEqual(0);
      for (const v of [x.recentLatencyMs, x.methodCostMs, x.errorRate, x.oldestInflightMs, x.payloadBytes]) {
        expect(Number.isFinite(v)).toBe(true);
      }
    }
    expect(a.some((x) => x.failed && x.latencyMs < 5)).toBe(true); // fast failures, as observed
    expect(a.some((x) => x.cpu !== undefined && x.queueLength !== undefined)).toBe(true);
  });
});
