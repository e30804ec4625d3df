import type { Attempt, AttemptResult } from '../../../src/router/attempt.js';
import { hedgeDelay } from '../../../src/router/hedge-delay.js';
import { LatencyTracker } from '../../../src/router/latency.js';
import { describeTryDeadline, tryDeadline } from '../../../src/router/try-deadline.js';
import { underDeadline } from '../../../src/router/try-timer.js';
import { ManualTimers } from '../../../src/util/timers.js';

// Per-try deadlines and hedge delays from per-call predictions (issue 17): the pure choices, and the
// try's timer on a controlled clock.

const spec = { multiplier: 3, floorMs: 20, ceilingMs: 500 };

describe('tryDeadline', () => {
  it('is multiplier × the predicted p99, within the floor and the ceiling', () => {
    expect(tryDeadline({ spec, predictedP99Ms: 40, remainingMs: Infinity })).toEqual({
      ms: 120,
      basis: 'model',
      p99Ms: 40,
    });
    expect(tryDeadline({ spec, predictedP99Ms: 2, remainingMs: Infinity })?.ms).toBe(20);
    expect(tryDeadline({ spec, predictedP99Ms: 400, remainingMs: Infinity })?.ms).toBe(500);
    expect(
      tryDeadline({ spec: { multiplier: 2, floorMs: 5 }, predictedP99Ms: 1e6, remainingMs: Infinity })?.ms,
    ).toBe(2e6);
  });

  it("prefers the model's p99 to the observed one, and has none without either", () => {
    expect(tryDeadline({ spec, predictedP99Ms: 40, observedP99Ms: 90, remainingMs: Infinity })?.basis).toBe(
      'model',
    );
    expect(tryDeadline({ spec, observedP99Ms: 90, remainingMs: Infinity })).toEqual({
      ms: 270,
      basis: 'observed',
      p99Ms: 90,
    });
    expect(tryDeadline({ spec, predictedP99Ms: NaN, observedP99Ms: 90, remainingMs: Infinity })?.basis).toBe(
      'observed',
    );
    expect(tryDeadline({ spec, remainingMs: Infinity })).toBeUndefined();
    expect(tryDeadline({ spec: undefined, predictedP99Ms: 40, remainingMs: Infinity })).toBeUndefined();
  });

  it("is none when it would not end before the call's own deadline", () => {
    expect(tryDeadline({ spec, predictedP99Ms: 40, remainingMs: 121 })?.ms).toBe(120);
    expect(tryDeadline({ spec, predictedP99Ms: 40, remainingMs: 120 })).toBeUndefined();
    expect(tryDeadline({ spec, predictedP99Ms: 40, remainingMs: 50 })).toBeUndefined();
  });

  it('says how it was set', () => {
    const at = (p99: number) =>
      describeTryDeadline(tryDeadline({ spec, predictedP99Ms: p99, remainingMs: Infinity })!, spec);
    expect(at(40)).toBe('3 × the predicted p99 of 40 ms');
    expect(at(2.345)).toBe('3 × the predicted p99 of 2.3 ms, raised to the floor');
    expect(at(400)).toBe('3 × the predicted p99 of 400 ms, cut to the ceiling');
  });
});

describe('hedgeDelay', () => {
  const hedging = { enabled: true, delay: 'Predicted' as const, quantile: 0.9, maxPercent: 5 };

  it("takes the call's predicted quantile first, then the operator's p90, then the observed one", () => {
    const all = { hedging, idempotent: true, predictedMs: 7, operatorP90Ms: 30, observedMs: 50 };
    expect(hedgeDelay(all)).toEqual({ ms: 7, source: 'model' });
    expect(hedgeDelay({ ...all, predictedMs: undefined })).toEqual({ ms: 30, source: 'operator' });
    expect(hedgeDelay({ ...all, predictedMs: undefined, operatorP90Ms: undefined })).toEqual({
      ms: 50,
      source: 'observed',
    });
    expect(hedgeDelay({ hedging, idempotent: true })).toBeUndefined();
  });

  it('is the fixed delay when the spec sets one, and none when not hedging', () => {
    expect(hedgeDelay({ hedging: { ...hedging, delay: 25 }, idempotent: true, predictedMs: 7 })).toEqual({
      ms: 25,
      source: 'fixed',
    });
    expect(hedgeDelay({ hedging, idempotent: false, predictedMs: 7 })).toBeUndefined();
    expect(
      hedgeDelay({ hedging: { ...hedging, enabled: false }, idempotent: true, predictedMs: 7 }),
    ).toBeUndefined();
  });
});

describe('LatencyTracker.quantile', () => {
  it('reads any quantile of the recent window', () => {
    const t = new LatencyTracker(100, 20);
    for (let i = 1; i <= 100; i++) t.record('/m', i);
    expect(t.quantile('/m', 0.5)).toBe(51);
    expect(t.quantile('/m', 0.99)).toBe(100);
    expect(t.quantile('/m', 1)).toBe(100);
    expect(t.quantile('/m', 0)).toBe(1);
    expect(t.quantile('/m', NaN)).toBeUndefined();
  });
});

describe('underDeadline', () => {
  const result = (r: Partial<AttemptResult> = {}): AttemptResult => ({
    code: 0,
    message: '',
    delivered: false,
    reachedServer: true,
    deliver: () => undefined,
    ...r,
  });
  /** An attempt that settles when told; cancelling it settles it as the real one does (on close). */
  function pending() {
    const cancelled: Array<[number, string, boolean]> = [];
    let end!: (r: AttemptResult) => void;
    const done = new Promise<AttemptResult>((r) => (end = r));
    const attempt = {
      endpoint: 'e',
      cancel: (code: number, message: string, censored = false) => {
        cancelled.push([code, message, censored]);
        end(result({ code, message, ...(censored ? { censored } : {}) }));
      },
    } as unknown as Attempt;
    return { attempt, done, cancelled, end };
  }

  it('cancels the try with DEADLINE_EXCEEDED once its deadline passes, and marks the result expired', async () => {
    const timers = new ManualTimers();
    const p = pending();
    const guarded = underDeadline(p, 100, 'too slow', timers);
    timers.advance(99);
    expect(p.cancelled).toEqual([]);
    timers.advance(1);
    // censored: the try was slow, not failed; its latency is a lower bound (CallOutcome.censored)
    expect(p.cancelled).toEqual([[4, 'too slow', true]]);
    const r = await guarded.done;
    expect(r).toMatchObject({ code: 4, message: 'too slow', expired: true, censored: true });
    expect(timers.size).toBe(0);
  });

  it('leaves a try that settles in time alone and clears its timer', async () => {
    const timers = new ManualTimers();
    const p = pending();
    const guarded = underDeadline(p, 100, 'too slow', timers);
    timers.advance(50);
    p.end(result({ delivered: true }));
    const r = await guarded.done;
    expect(r.expired).toBeUndefined();
    expect(timers.size).toBe(0);
    expect(p.cancelled).toEqual([]);
  });
});
