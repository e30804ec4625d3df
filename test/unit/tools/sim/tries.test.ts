import { Type } from '@sinclair/typebox';
import {
  createBalancer,
  registerBalancer,
  type CallOutcome,
  type PredictiveFeatures,
} from '../../../../src/balancer/index.js';
import { simulate } from '../../../../src/tools/sim/engine.js';
import { collectSamples } from '../../../../src/tools/sim/samples.js';
import { scenario } from './helpers.js';

/** Every outcome the policy is told of (CensorSpy: Predictive, its onCallEnded recorded). */
const told: CallOutcome[] = [];
registerBalancer('CensorSpy', Type.Object({}), (_config, deps) => {
  const b = createBalancer('Predictive', deps);
  const onCallEnded = b.onCallEnded.bind(b);
  b.onCallEnded = (ep, req, outcome) => {
    told.push({ ...outcome });
    onCallEnded(ep, req, outcome);
  };
  return b;
});

/** A stand-in for the model's per-call quantiles: the policy's own estimate, widened with q. */
const quantiles = (f: PredictiveFeatures, q: number): number => f.estimateMs * (1 + 4 * (q - 0.5));

/** Four servers, one stalled for 1.5 s out of every 5 (longer than the 1 s deadline). */
const stalled = (patch: Record<string, unknown> = {}) =>
  scenario({
    durationS: 20,
    events: [{ server: 0, fromS: 1.5, pauseEveryS: 5, pauseMs: 1500 }],
    ...patch,
  });

describe('simulated hedging', () => {
  it('hedges within its budget, and every call is answered once', () => {
    const s = scenario({ durationS: 20 });
    const plain = simulate(s, { policy: 'Predictive' });
    const hedged = simulate(
      { ...s, hedging: { delayMs: 1, quantile: 0.95, budgetPercent: 5 } },
      {
        policy: 'Predictive',
      },
    );
    expect(hedged.calls).toBe(plain.calls);
    expect(hedged.hedgeRate).toBeGreaterThan(0.03);
    // the budget: 5% of calls plus a reserve of one a second per router
    expect(hedged.hedgeRate).toBeLessThan(0.06);
    expect(hedged.retryRate).toBe(0);
    expect(plain.hedgeRate).toBe(0);
  });

  it('with cancelRunning, a loser frees its slot: no more work done than without', () => {
    const s = { ...scenario({ durationS: 20 }), hedging: { delayMs: 1, quantile: 0.95, budgetPercent: 5 } };
    const keeps = simulate(s, { policy: 'Predictive' });
    const stops = simulate({ ...s, cancelRunning: true }, { policy: 'Predictive' });
    expect(stops.calls).toBe(keeps.calls);
    expect(stops.hedgeRate).toBeGreaterThan(0);
    expect(stops.meanMs).toBeLessThanOrEqual(keeps.meanMs);
  });

  it('sends no hedge with a zero budget or a delay past the deadline', () => {
    const s = scenario();
    for (const hedging of [
      { delayMs: 1, quantile: 0.95, budgetPercent: 0 },
      { delayMs: 5000, quantile: 0.95, budgetPercent: 5 },
    ]) {
      expect(simulate({ ...s, hedging }, { policy: 'Predictive' }).hedgeRate).toBe(0);
    }
  });

  it("takes each call's delay from the quantiles, and refuses Predicted without them", () => {
    const s = { ...scenario(), hedging: { delayMs: 'Predicted' as const, quantile: 0.5, budgetPercent: 5 } };
    expect(() => simulate(s, { policy: 'Predictive' })).toThrow(/need a latency model/);
    const r = simulate(s, { policy: 'Predictive', quantiles });
    expect(r.hedgeRate).toBeGreaterThan(0);
    expect(simulate(s, { policy: 'Predictive', quantiles })).toEqual(r);
  });

  it("tells the policy a loser's latency as censored: never a short answer, never a failure", () => {
    // A loser is cancelled when the other try answers: its latency is a lower bound (a hedge sent
    // 1 ms before the first try answered "took" 1 ms). Taken as an answer, it made its endpoint look
    // fast (CallOutcome.censored).
    told.length = 0;
    const s = { ...scenario({ durationS: 5 }), hedging: { delayMs: 1, quantile: 0.95, budgetPercent: 20 } };
    simulate(s, { policy: 'CensorSpy' });
    const cancelled = told.filter((o) => o.code === 1);
    expect(cancelled.length).toBeGreaterThan(50);
    expect(cancelled.every((o) => o.censored === true)).toBe(true);
    expect(told.filter((o) => o.censored).length).toBe(cancelled.length);
    expect(told.some((o) => o.code === 0 && !o.censored)).toBe(true);
  });

  it('keeps a loser out of the training samples (its latency is no label) and out of the failures', () => {
    const s = { ...scenario({ durationS: 5 }), hedging: { delayMs: 1, quantile: 0.95, budgetPercent: 20 } };
    const samples = collectSamples(s, { seed: 1, policy: 'Predictive', maxSamples: 5000 });
    expect(samples.length).toBeGreaterThan(1000);
    // no failure in this pool: before, every sampled loser came out as a failed call
    expect(samples.filter((x) => x.failed)).toEqual([]);
  });

  it('rescues calls stuck on a stalled server', () => {
    const s = stalled();
    const plain = simulate(s, { policy: 'RoundRobin' });
    const hedged = simulate(
      { ...s, hedging: { delayMs: 50, quantile: 0.95, budgetPercent: 30 } },
      {
        policy: 'RoundRobin',
      },
    );
    expect(plain.errorRate).toBeGreaterThan(0);
    expect(hedged.errorRate).toBeLessThan(plain.errorRate);
  });
});

describe('simulated per-try deadlines', () => {
  const timeout = { predicted: { multiplier: 2, floorMs: 10 }, retryBudgetPercent: 20 };

  it('retries tries stuck on a stalled server elsewhere: fewer failures, and no worse a tail', () => {
    const s = stalled();
    const fixed = simulate(s, { policy: 'Predictive', quantiles });
    const predicted = simulate({ ...s, timeout }, { policy: 'Predictive', quantiles });
    expect(predicted.retryRate).toBeGreaterThan(0);
    expect(predicted.calls).toBe(fixed.calls);
    // Predictive's stall floor keeps all but a few calls off the paused server, so those few (0.02%)
    // are below the p99 over all calls: the deadline rescues them from failing at the call's deadline,
    // and retrying them costs the tail nothing beyond noise (the p99 cut where stalls make the tail
    // is the benchmark's: bench sim --compare deadlines, stw-pauses)
    expect(fixed.errorRate).toBeGreaterThan(0);
    expect(predicted.errorRate).toBeLessThan(fixed.errorRate);
    expect(predicted.p99AllMs).toBeLessThan(fixed.p99AllMs * 1.01);
  });

  it('tells the policy a try cut at its deadline as censored DEADLINE_EXCEEDED: a lower bound, not a failure', () => {
    told.length = 0;
    simulate({ ...stalled(), timeout }, { policy: 'CensorSpy', quantiles });
    const cut = told.filter((o) => o.censored);
    expect(cut.length).toBeGreaterThan(0);
    for (const o of cut) {
      expect(o.code).toBe(4);
      expect(o.latencyMs).toBeLessThan(1000); // its own deadline, before the call's
    }
  });

  it('retries nothing with a zero retry budget, and fails no more calls than without deadlines', () => {
    const s = stalled();
    const fixed = simulate(s, { policy: 'Predictive', quantiles });
    const r = simulate(
      { ...s, timeout: { ...timeout, retryBudgetPercent: 0 } },
      { policy: 'Predictive', quantiles },
    );
    expect(r.retryRate).toBe(0);
    // a try nothing can replace runs on to the call's deadline
    expect(r.errorRate).toBe(fixed.errorRate);
  });
});
