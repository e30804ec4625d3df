import { HYSTERESIS, MAX_WEIGHT, PoolWeights, capacity, hold, quantise } from '../../../src/xds/weights.js';
import type { XdsEndpointInput } from '../../../src/xds/types.js';

const ep = (address: string, predictedServiceMs?: number, concurrency?: number): XdsEndpointInput => ({
  address,
  ready: true,
  draining: false,
  ...(predictedServiceMs !== undefined ? { predictedServiceMs } : {}),
  ...(concurrency !== undefined ? { concurrency } : {}),
});

describe('capacity', () => {
  it('is concurrency over service time, in calls per second (Little)', () => {
    expect(capacity(ep('a:1', 10, 4))).toBe(400);
    expect(capacity(ep('a:1', 20))).toBe(50); // one slot when unknown
    expect(capacity(ep('a:1'))).toBeUndefined();
    expect(capacity(ep('a:1', 0))).toBeUndefined();
    expect(capacity(ep('a:1', Number.NaN))).toBeUndefined();
  });

  it('counts only the calls that succeed: a server failing fast is not the fastest', () => {
    expect(capacity({ ...ep('a:1', 10, 4), errorRate: 0.25 })).toBe(300);
    expect(capacity({ ...ep('a:1', 1), errorRate: 1 })).toBe(0);
    expect(new PoolWeights().update([{ ...ep('sink:1', 1), errorRate: 1 }, ep('ok:1', 20)])).toEqual(
      new Map([
        ['sink:1', 1],
        ['ok:1', 50],
      ]),
    );
  });
});

describe('quantise', () => {
  it('keeps two significant figures within [1, MAX_WEIGHT]', () => {
    expect(quantise(0.2)).toBe(1);
    expect(quantise(0)).toBe(1);
    expect(quantise(7.4)).toBe(7);
    expect(quantise(123.4)).toBe(120);
    expect(quantise(126)).toBe(130);
    expect(quantise(54_321)).toBe(54_000);
    expect(quantise(1e9)).toBe(MAX_WEIGHT);
    expect(quantise(Number.POSITIVE_INFINITY)).toBe(1);
  });
});

describe('hold', () => {
  it('keeps the weight in force while the estimate stays inside the hysteresis band', () => {
    expect(hold(100, 100 * (1 + HYSTERESIS))).toBe(100);
    expect(hold(100, 100 * (1 - HYSTERESIS))).toBe(100);
    expect(hold(100, 100 * (1 + HYSTERESIS) + 1)).toBe(120);
    expect(hold(100, 80)).toBe(80);
    expect(hold(undefined, 93.3)).toBe(93);
  });
});

describe('PoolWeights', () => {
  it('weights by capacity, never below 1', () => {
    const w = new PoolWeights().update([ep('a:1', 5, 2), ep('b:1', 20, 2), ep('c:1', 10_000)]);
    expect(Object.fromEntries(w)).toEqual({ 'a:1': 400, 'b:1': 100, 'c:1': 1 });
  });

  it('gives endpoints without a prediction the mean of the others, and all equal when none has one', () => {
    const w = new PoolWeights().update([ep('a:1', 10), ep('b:1', 5), ep('c:1')]);
    expect(Object.fromEntries(w)).toEqual({ 'a:1': 100, 'b:1': 200, 'c:1': 150 });
    const none = new PoolWeights().update([ep('a:1'), ep('b:1')]);
    expect(Object.fromEntries(none)).toEqual({ 'a:1': 1, 'b:1': 1 });
  });

  it('pushes nothing for noise and follows a real change', () => {
    const pw = new PoolWeights();
    const first = pw.update([ep('a:1', 10), ep('b:1', 10)]);
    // ±10% noise on the predictions: the weights in force stay.
    for (const ms of [9.2, 10.9, 9.5, 10.4]) {
      expect(pw.update([ep('a:1', ms), ep('b:1', 20 - ms)])).toEqual(first);
    }
    const moved = pw.update([ep('a:1', 5), ep('b:1', 10)]);
    expect(Object.fromEntries(moved)).toEqual({ 'a:1': 200, 'b:1': 100 });
  });

  it('forgets endpoints that left', () => {
    const pw = new PoolWeights();
    pw.update([ep('a:1', 10), ep('b:1', 10)]);
    expect([...pw.update([ep('a:1', 10)]).keys()]).toEqual(['a:1']);
  });

  it('counts the capacity of endpoints that take traffic only', () => {
    const eps = [ep('a:1', 10), { ...ep('b:1', 10), draining: true }, { ...ep('c:1', 10), ready: false }];
    expect(PoolWeights.usable(eps)).toBe(100);
    expect(PoolWeights.usable([ep('a:1'), ep('b:1')])).toBe(0);
  });
});
