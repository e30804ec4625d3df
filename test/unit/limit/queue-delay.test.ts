import { QueueDelayLimit, QUEUE_DELAY_DEFAULTS } from '../../../src/limit/index.js';

/**
 * QueueDelay sample by sample. `feed` gives one window: `n` calls (10, the window size) started 12 ms
 * apart from `t`, each taking `rtt` with `inflight` in flight, so the window spans over its 100 ms floor
 * and, the RTTs being equal, is as precise as can be. It returns when the next window may start: after
 * the last call ended and, after a cut, once the limit's own wait of one RTT has passed.
 */
function feed(
  l: QueueDelayLimit,
  t: number,
  rtt: number,
  inflight: number,
  o: { n?: number; dropped?: boolean } = {},
) {
  const n = o.n ?? 10;
  for (let i = 0; i < n; i++) l.onSample(t + i * 12, rtt, inflight, o.dropped === true && i === n - 1);
  return t + (n - 1) * 12 + 2 * rtt + 1;
}

/** A limit at 10 with R₀ = 100 ms learnt: its first window drains (to 5), then it comes back. */
function settled(): { l: QueueDelayLimit; t: number } {
  const l = new QueueDelayLimit({ initialLimit: 10, maxLimit: 100 }, () => 0);
  let t = feed(l, 0, 100, 10);
  expect(l.draining).toBe(true);
  expect(l.limit).toBe(5);
  t = feed(l, t, 100, 5); // R did not fall at half the calls: no queue; back to 10
  expect(l.draining).toBe(false);
  expect(l.limit).toBe(10);
  expect(l.baseRttMs).toBe(100);
  return { l, t };
}

describe('QueueDelay', () => {
  it('learns R₀ from its first window and drains to half to check it', () => {
    settled();
  });

  it("cuts to the calls the backend serves with no queue (Little's law) when R is over the target", () => {
    const { l, t } = settled();
    feed(l, t, 200, 10); // R = 2 · R₀ > 1.3 · R₀: X = 10 / 200 ms, which needs 10 · 100 / 200 = 5
    expect(l.estimate).toBeCloseTo(5, 9);
    expect(l.limit).toBe(5);
  });

  it('leaves the limit alone between half the target and the target (a dead band)', () => {
    const { l, t } = settled();
    feed(l, t, 100 * (1 + QUEUE_DELAY_DEFAULTS.delayTarget * 0.9), 10);
    expect(l.estimate).toBe(10);
    feed(l, t + 500, 100 * (1 + QUEUE_DELAY_DEFAULTS.delayTarget * 0.6), 10);
    expect(l.estimate).toBe(10);
  });

  it('grows by `growth` per window under half the target, only while three quarters of it are in use', () => {
    const { l, t } = settled();
    let at = feed(l, t, 200, 10); // a cut, to 5: slow start is over
    expect(l.limit).toBe(5);
    at = feed(l, at, 100, 3); // 3 of 5 in flight: not in use, nothing learnt about more
    expect(l.estimate).toBe(5);
    at = feed(l, at, 100, 5);
    expect(l.estimate).toBe(5 + QUEUE_DELAY_DEFAULTS.growth);
    feed(l, at, 105, 5);
    expect(l.estimate).toBe(5 + 2 * QUEUE_DELAY_DEFAULTS.growth);
  });

  it('grows by a quarter per window until its first cut (slow start)', () => {
    const { l, t } = settled();
    feed(l, t, 100, 10);
    expect(l.estimate).toBeCloseTo(12.5, 9);
  });

  it('keeps a limit whose probe queued out of reach for holdMs, twice as long when it fails again', () => {
    const l = new QueueDelayLimit({ initialLimit: 3, maxLimit: 100 }, () => 0);
    let t = feed(l, 0, 100, 3); // R₀ 100; drains to 1
    t = feed(l, t, 100, 1);
    expect(l.limit).toBe(3);
    t = feed(l, t, 150, 3); // a backend with 2 slots: 3 in flight wait 50% longer
    expect(l.limit).toBe(2);
    const cutAt = t;
    while (l.limit === 2) t = feed(l, t, 100, 2);
    expect(t - cutAt).toBeLessThan(1000); // one cut holds nothing: 3 is probed again soon
    t = feed(l, t, 150, 3); // the probe queues too: back to 2, and 3 is held
    expect(l.limit).toBe(2);
    const heldAt = t;
    while (l.limit === 2) t = feed(l, t, 100, 2);
    expect(t - heldAt).toBeGreaterThanOrEqual(QUEUE_DELAY_DEFAULTS.holdMinMs);
    expect(t - heldAt).toBeLessThan(QUEUE_DELAY_DEFAULTS.holdMinMs + 1000);
    t = feed(l, t, 150, 3); // fails again: held twice as long
    const againAt = t;
    while (l.limit === 2) t = feed(l, t, 100, 2);
    expect(t - againAt).toBeGreaterThanOrEqual(2 * QUEUE_DELAY_DEFAULTS.holdMinMs);
  });

  it("judges a growth at a small limit by Little's law: R up by more than half of L's rise is queue", () => {
    const l = new QueueDelayLimit({ initialLimit: 2, maxLimit: 100 }, () => 0);
    let t = feed(l, 0, 100, 2); // R₀ 100, drains to 1
    t = feed(l, t, 100, 1);
    t = feed(l, t, 100, 2); // under target at 2: slow start to 2.5, limit 3
    expect(l.limit).toBe(3);
    // R = 128 ms is under the 130 ms target, but 50% more calls in flight took 28% longer each: more
    // than half of L's rise went into R (throughput up 17%, not 50%), so the extra call mostly waited
    feed(l, t, 128, 3);
    expect(l.limit).toBe(2);
  });

  it('backs off by `backoff` on a window with a drop', () => {
    const { l, t } = settled();
    feed(l, t, 100, 10, { dropped: true });
    expect(l.estimate).toBeCloseTo(10 * QUEUE_DELAY_DEFAULTS.backoff, 9);
  });

  it('ignores calls admitted before its last change', () => {
    const { l, t } = settled();
    const end = feed(l, t, 200, 10); // cut to 5 at the end of this window
    expect(l.limit).toBe(5);
    feed(l, end - 400, 1000, 10); // admitted before the cut (or within its RTT): not judged
    expect(l.limit).toBe(5);
  });

  it('takes a slower backend for what it is: when cuts do not lower R, R₀ moves and the cuts are undone', () => {
    const { l, t } = settled();
    let at = feed(l, t, 200, 10); // twice as slow: looks like a queue, cut to 5
    expect(l.limit).toBe(5);
    at = feed(l, at, 200, 5); // half the calls, same R: the backend's own time
    expect(l.baseRttMs).toBe(200);
    expect(l.limit).toBe(10);
    feed(l, at, 200, 10);
    expect(l.limit).toBeGreaterThanOrEqual(10);
  });

  it('comes down from far above the knee by halving drains, then holds the knee and probes rarely', () => {
    // A backend with 2 slots of 100 ms, always busy: Little's law gives R = 100 · max(1, L / 2).
    const l = new QueueDelayLimit({ initialLimit: 20, maxLimit: 100 }, () => 0.5);
    let t = 0;
    const limits: number[] = [];
    const probes: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const L = l.limit;
      const rtt = 100 * Math.max(1, L / 2);
      l.onSample(t, rtt, L, false);
      if (L === 2 && l.limit === 3) probes.push(t);
      t += rtt / L;
      limits.push(l.limit);
    }
    expect(limits.indexOf(2)).toBeLessThan(200);
    const after = limits.slice(300);
    expect(Math.max(...after)).toBe(3);
    expect(after.filter((x) => x === 2).length / after.length).toBeGreaterThan(0.95);
    const gaps = probes.slice(1).map((p, i) => p - (probes[i] as number));
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < Math.min(gaps.length, 3); i++) expect(gaps[i]).toBeGreaterThan(gaps[i - 1] as number);
  });
});
