import { createBalancer, type BalancerDeps } from '../../../src/balancer/index.js';
import type { P2C } from '../../../src/balancer/p2c.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { endpoint } from './harness.js';

const req = { method: '/t.S/M', payloadBytes: 0 };
/** LeastRequest: P2C over the least-request load (least-request.ts). */
const leastRequest = (deps: BalancerDeps, config: object = {}) =>
  createBalancer('LeastRequest', deps, config) as P2C;

describe('LeastRequest (power of two choices)', () => {
  it('of two candidates, always takes the one with fewer calls in flight', () => {
    const b = leastRequest({ clock: new ManualClock(), random: seededRandom(1) });
    const [x, y] = [endpoint('x'), endpoint('y')];
    x.inflight = 3;
    y.inflight = 2;
    for (let i = 0; i < 200; i++) expect(b.pick([x, y])).toBe(y);
  });

  it('breaks ties at random', () => {
    const b = leastRequest({ clock: new ManualClock(), random: seededRandom(2) });
    const [x, y] = [endpoint('x'), endpoint('y')];
    let xs = 0;
    for (let i = 0; i < 4000; i++) if (b.pick([x, y]) === x) xs++;
    expect(xs / 4000).toBeGreaterThan(0.45);
    expect(xs / 4000).toBeLessThan(0.55);
  });

  it('samples two distinct candidates: the most loaded never wins, the least wins 2/3 of the time of 3', () => {
    const b = leastRequest({ clock: new ManualClock(), random: seededRandom(3) });
    const eps = [endpoint('a'), endpoint('b'), endpoint('c')];
    eps.forEach((e, i) => (e.inflight = i * 5));
    const n: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 6000; i++) n[b.pick(eps).id]!++;
    expect(n.c).toBe(0);
    expect(n.a! / 6000).toBeCloseTo(2 / 3, 1);
    expect(n.b! / 6000).toBeCloseTo(1 / 3, 1);
  });

  it('counts a failure as a call held for the penalty time: load = inflight + Σ exp(−age/τ)', () => {
    const clock = new ManualClock();
    const b = leastRequest({ clock, random: seededRandom(4) }, { failurePenaltyMs: 1000 });
    const x = endpoint('x');
    b.pick([x]);
    b.onCallEnded(x, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    expect(b.load(x)).toBeCloseTo(1, 9);
    clock.advance(1000);
    expect(b.load(x)).toBeCloseTo(Math.exp(-1), 9);
    b.onCallEnded(x, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    expect(b.load(x)).toBeCloseTo(Math.exp(-1) + 1, 9);
    b.onCallEnded(x, req, { ok: true, code: 0, latencyMs: 1, startedAtMs: 0 });
    expect(b.load(x)).toBeCloseTo(Math.exp(-1) + 1, 9); // successes are not penalised
    x.inflight = 2;
    expect(b.load(x)).toBeCloseTo(Math.exp(-1) + 3, 9);
    b.onEndpointReadmitted('x');
    expect(b.load(x)).toBe(2); // readmitted: only its calls in flight count
    b.onCallEnded(x, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    b.onEndpointRemoved('x');
    expect(b.load(x)).toBe(2);
  });
});
