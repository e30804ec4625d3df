import { Checker } from '../../../../src/tools/sim/checker.js';
import {
  hedgeDelayMs,
  parseHedging,
  parseTimeout,
  tryDeadlineMs,
} from '../../../../src/tools/sim/try-policy.js';
import { scenario } from './helpers.js';

describe('hedgeDelayMs', () => {
  it('is the fixed delay whatever the prediction', () => {
    const spec = { delayMs: 12, quantile: 0.95, budgetPercent: 5 };
    expect(hedgeDelayMs(spec, 3)).toBe(12);
    expect(hedgeDelayMs(spec, undefined)).toBe(12);
  });

  it("is the call's own prediction when Predicted, and no hedge without one", () => {
    const spec = { delayMs: 'Predicted' as const, quantile: 0.95, budgetPercent: 5 };
    expect(hedgeDelayMs(spec, 7.5)).toBe(7.5);
    expect(hedgeDelayMs(spec, undefined)).toBeUndefined();
    expect(hedgeDelayMs(spec, NaN)).toBeUndefined();
  });
});

describe('tryDeadlineMs', () => {
  const spec = { multiplier: 2, floorMs: 10 };

  it('is multiplier × predicted p99 above the floor', () => {
    expect(tryDeadlineMs(spec, 30, 1000)).toBe(60);
  });

  it('is the floor for a fast call', () => {
    expect(tryDeadlineMs(spec, 1, 1000)).toBe(10);
  });

  it("is capped at the ceiling and at what is left of the call's deadline", () => {
    expect(tryDeadlineMs({ ...spec, ceilingMs: 40 }, 30, 1000)).toBe(40);
    expect(tryDeadlineMs(spec, 30, 25)).toBe(25);
  });

  it("is the call's own without a prediction or a predicted section", () => {
    expect(tryDeadlineMs(spec, undefined, 800)).toBe(800);
    expect(tryDeadlineMs(undefined, 30, 800)).toBe(800);
  });
});

describe('parsing', () => {
  const c = new Checker('t.json');

  it('fills the defaults', () => {
    expect(parseHedging(c, { delayMs: 'Predicted' })).toEqual({
      delayMs: 'Predicted',
      quantile: 0.99,
      budgetPercent: 5,
    });
    expect(parseTimeout(c, { predicted: {} })).toEqual({
      predicted: { multiplier: 2, floorMs: 10 },
      retryBudgetPercent: 20,
    });
  });

  it('names the field at fault', () => {
    expect(() => parseHedging(c, { delayMs: 'soon' })).toThrow(/hedging.delayMs/);
    expect(() => parseTimeout(c, { predicted: { floorMs: 20, ceilingMs: 10 } })).toThrow(
      /timeout.predicted.ceilingMs must not be below floorMs/,
    );
    expect(() => parseHedging(c, { delay: 3 })).toThrow(/hedging.delay is not a known field/);
  });

  it('is part of the scenario format, and refuses a limiter beside it', () => {
    expect(scenario({ hedging: { delayMs: 5 } }).hedging?.delayMs).toBe(5);
    expect(() => scenario({ hedging: { delayMs: 5 }, concurrency: {} })).toThrow(/does not go with hedging/);
  });
});
