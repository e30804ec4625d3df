import { parseBalancerConfig } from '../../../src/balancer/index.js';
import { P2C } from '../../../src/balancer/p2c.js';
import { PeakEwmaLoad, type PeakEwmaConfig } from '../../../src/balancer/peak-ewma.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { endpoint } from './harness.js';

const req = { method: '/t.S/M', payloadBytes: 0 };
const ok = (latencyMs: number) => ({ ok: true, code: 0, latencyMs, startedAtMs: 0 });

/** PeakEwma: P2C over the peak-EWMA load (peak-ewma.ts), with the metric's estimate at hand. */
function peakEwma(deps: { clock: ManualClock; random: () => number }) {
  const metric = new PeakEwmaLoad(parseBalancerConfig('PeakEwma').config as PeakEwmaConfig);
  return Object.assign(new P2C('PeakEwma', metric, deps), {
    estimate: (id: string) => metric.estimate(id, deps.clock.now()),
  });
}

function setup() {
  const clock = new ManualClock();
  const b = peakEwma({ clock, random: seededRandom(1) });
  const x = endpoint('x');
  b.pick([x]); // starts tracking x at the default RTT
  return { clock, b, x };
}

describe('PeakEwma (Finagle / Linkerd)', () => {
  it('starts an unknown endpoint at the default RTT (30 ms)', () => {
    expect(setup().b.estimate('x')).toBe(30);
  });

  it('believes a slower sample at once (peak)', () => {
    const { b, x } = setup();
    b.onCallEnded(x, req, ok(100));
    expect(b.estimate('x')).toBe(100);
  });

  it('decays with w = exp(−Δt/τ), τ = 10 s, towards zero when idle', () => {
    const { clock, b, x } = setup();
    b.onCallEnded(x, req, ok(100));
    clock.advance(10_000);
    expect(b.estimate('x')).toBeCloseTo(100 * Math.exp(-1), 9);
    clock.advance(10_000);
    expect(b.estimate('x')).toBeCloseTo(100 * Math.exp(-2), 9); // reading does not change the decay
  });

  it('blends a faster sample with weight 1 − w', () => {
    const { clock, b, x } = setup();
    b.onCallEnded(x, req, ok(100));
    clock.advance(5000);
    b.onCallEnded(x, req, ok(20));
    const w = Math.exp(-0.5);
    expect(b.estimate('x')).toBeCloseTo(100 * w + 20 * (1 - w), 9);
  });

  it('costs rtt × (inflight + 1)', () => {
    const { b, x } = setup();
    b.onCallEnded(x, req, ok(40));
    x.inflight = 3;
    expect(b.load(x)).toBe(160);
  });

  it('charges a fast failure the penalty, so it never looks cheap', () => {
    const { b, x } = setup();
    b.onCallEnded(x, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    expect(b.estimate('x')).toBe(1000);
  });

  it('takes a try the router cut (censored) as a lower bound: a peak above the estimate, else nothing', () => {
    const { b, x } = setup();
    const cut = (latencyMs: number, code: number) => ({
      ok: code === 1,
      code,
      latencyMs,
      startedAtMs: 0,
      censored: true,
    });
    b.onCallEnded(x, req, cut(1, 1)); // a hedge that lost its race after 1 ms: not a 1 ms answer
    expect(b.estimate('x')).toBe(30);
    b.onCallEnded(x, req, cut(80, 4)); // cut at its try deadline: at least 80 ms, not a failure
    expect(b.estimate('x')).toBe(80);
  });

  it('picks the cheaper of two random candidates', () => {
    const clock = new ManualClock();
    const b = peakEwma({ clock, random: seededRandom(2) });
    const [x, y] = [endpoint('x'), endpoint('y')];
    b.pick([x, y]);
    b.pick([x, y]);
    b.onCallEnded(x, req, ok(200));
    b.onCallEnded(y, req, ok(40));
    x.inflight = 0;
    y.inflight = 3; // 40 × 4 = 160 < 200 × 1
    for (let i = 0; i < 100; i++) expect(b.pick([x, y])).toBe(y);
    y.inflight = 5; // 240 > 200
    for (let i = 0; i < 100; i++) expect(b.pick([x, y])).toBe(x);
  });

  it('forgets a removed endpoint', () => {
    const { b, x } = setup();
    b.onCallEnded(x, req, ok(500));
    b.onEndpointRemoved('x');
    b.onCallEnded(x, req, ok(700)); // a call that ends after removal is dropped
    expect(b.estimate('x')).toBe(30);
  });

  it('starts an endpoint its breaker readmits at the median of the others, not at its failures', () => {
    const clock = new ManualClock();
    const b = peakEwma({ clock, random: seededRandom(3) });
    const [x, y, z, w] = [endpoint('x'), endpoint('y'), endpoint('z'), endpoint('w')];
    for (const e of [x, y, z, w]) b.pick([e]);
    b.onCallEnded(y, req, ok(40));
    b.onCallEnded(z, req, ok(50));
    b.onCallEnded(w, req, ok(90));
    b.onCallEnded(x, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    expect(b.estimate('x')).toBe(1000);
    clock.advance(1000);
    b.onEndpointReadmitted('x');
    const d = Math.exp(-0.1);
    expect(b.estimate('x')).toBeCloseTo(50 * d, 9); // median of y, z, w now
    b.onCallEnded(x, req, ok(200)); // and its own samples move it from there
    expect(b.estimate('x')).toBe(200);
  });

  it('forgets a readmitted endpoint that is alone in the pool (the default RTT again)', () => {
    const { b, x } = setup();
    b.onCallEnded(x, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    b.onEndpointReadmitted('x');
    expect(b.estimate('x')).toBe(30);
  });
});
