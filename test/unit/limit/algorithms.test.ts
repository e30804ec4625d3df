import { AimdLimit, FixedLimit, Gradient2Limit, VegasLimit } from '../../../src/limit/index.js';

describe('Gradient2', () => {
  it('follows limit · (1 − s) + (limit · clamp(long/short, 0.5, 1) + queue) · s', () => {
    const g = new Gradient2Limit({ initialLimit: 20, maxLimit: 100 });
    g.onSample(0, 10, 20, false); // long = 10, gradient 1: 20·0.8 + 24·0.2
    expect(g.estimate).toBeCloseTo(20.8, 9);
    g.onSample(0, 20, 20, false); // long = mean(10, 20) = 15, gradient 0.75
    expect(g.longRttMs).toBeCloseTo(15, 9);
    expect(g.estimate).toBeCloseTo(20.8 * 0.8 + (20.8 * 0.75 + 4) * 0.2, 9);
    expect(g.limit).toBe(20);
  });

  it('keeps a plain mean for 10 samples, then an EMA with factor 2/(window+1)', () => {
    const g = new Gradient2Limit({ initialLimit: 20, longWindow: 9 });
    for (let i = 0; i < 10; i++) g.onSample(0, 10, 0, false);
    expect(g.longRttMs).toBeCloseTo(10, 9);
    g.onSample(0, 15, 0, false);
    expect(g.longRttMs).toBeCloseTo(10 + 5 * 0.2, 9);
  });

  it('cuts the baseline by 10% while it is over twice the latest RTT (load has gone)', () => {
    const g = new Gradient2Limit({});
    for (let i = 0; i < 10; i++) g.onSample(0, 100, 0, false);
    g.onSample(0, 10, 0, false); // long → 100 + (10 − 100)·2/601, then × 0.9
    expect(g.longRttMs).toBeCloseTo((100 + (-90 * 2) / 601) * 0.9, 9);
  });

  it('leaves a drop out of the RTT averages and backs off 10%', () => {
    const g = new Gradient2Limit({ initialLimit: 50 });
    g.onSample(0, 10, 50, false);
    const [long, est] = [g.longRttMs, g.estimate];
    g.onSample(0, 1, 50, true);
    expect(g.longRttMs).toBe(long);
    expect(g.estimate).toBeCloseTo(est * 0.9, 9);
  });
});

describe('AIMD', () => {
  it('adds one when used, backs off by 0.9 on a drop or over the target', () => {
    const a = new AimdLimit({ initialLimit: 20, targetLatencyMs: 100 });
    a.onSample(0, 10, 10, false);
    expect(a.limit).toBe(21);
    a.onSample(0, 10, 5, false); // app limited: unchanged
    expect(a.limit).toBe(21);
    a.onSample(0, 10, 21, true);
    expect(a.limit).toBe(18); // ⌊21 · 0.9⌋
    a.onSample(0, 101, 18, false);
    expect(a.limit).toBe(16);
  });

  it('always takes at least one off, even when 0.9 would round back up', () => {
    const a = new AimdLimit({ initialLimit: 5, minLimit: 1 });
    a.onSample(0, 1, 5, true);
    expect(a.limit).toBe(4);
  });
});

describe('Vegas', () => {
  const zero = () => 0; // jitter 0.5: probe after 15 · limit samples

  it('takes the smallest RTT as the no-load RTT, and re-probes it now and then', () => {
    const v = new VegasLimit({ initialLimit: 10 }, zero);
    v.onSample(0, 20, 10, false);
    v.onSample(0, 10, 10, false);
    expect(v.rttNoLoadMs).toBe(10);
    for (let i = 0; i < 200; i++) v.onSample(0, 30, 10, false);
    expect(v.rttNoLoadMs).toBe(30); // probed: the base latency has moved
  });

  it('grows by 6·l with no queue, l with a small one, shrinks by l beyond 6·l (l = max(1, ⌊log10 limit⌋))', () => {
    const v = new VegasLimit({ initialLimit: 100 }, zero);
    v.onSample(0, 10, 100, false); // no-load RTT
    v.onSample(0, 10, 100, false); // queue 0 ≤ l = 2 → +12
    expect(v.limit).toBe(112);
    v.onSample(0, 10.4, 112, false); // queue ⌈112 · (1 − 10/10.4)⌉ = 5 < alpha 6 → +2
    expect(v.limit).toBe(114);
    v.onSample(0, 11, 114, false); // queue ⌈114 · (1 − 10/11)⌉ = 11: between alpha and beta → same
    expect(v.limit).toBe(114);
    v.onSample(0, 20, 114, false); // queue 57 > beta 12 → −2
    expect(v.limit).toBe(112);
  });

  it('takes l off on a drop, and never learns a no-load RTT from one', () => {
    const v = new VegasLimit({ initialLimit: 100 }, zero);
    v.onSample(0, 10, 100, false);
    v.onSample(0, 1, 100, true);
    expect(v.limit).toBe(98);
    expect(v.rttNoLoadMs).toBe(10);
  });
});

describe('Fixed', () => {
  it('is its initial limit', () => {
    expect(new FixedLimit({ initialLimit: 7 }).limit).toBe(7);
    expect(new FixedLimit().limit).toBe(20);
  });
});
