import { createBalancer } from '../../../src/balancer/index.js';
import { Prequal, hotColdSelect, rifQuantile } from '../../../src/balancer/prequal.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { endpoint } from './harness.js';

const req = { method: '/t.S/M', payloadBytes: 0 };
const ok = (latencyMs: number) => ({ ok: true, code: 0, latencyMs, startedAtMs: 0 });

describe('Prequal hot-cold rule', () => {
  it('interpolates the RIF quantile between order statistics', () => {
    expect(rifQuantile([10, 0, 2, 1], 4, 0.84)).toBeCloseTo(2 + 0.52 * 8, 9);
    expect(rifQuantile([3], 1, 0.84)).toBe(3);
  });

  it('takes the cold probe with the lowest latency, ignoring a hot one that looks faster', () => {
    const rifs = [0, 1, 2, 10];
    const lats = [50, 5, 8, 1];
    const threshold = rifQuantile(rifs, 4, 0.84); // 6.16: only RIF 10 is hot
    expect(hotColdSelect(rifs, lats, 4, threshold, seededRandom(1))).toBe(1);
  });

  it('takes the lowest RIF when every probe is hot', () => {
    expect(hotColdSelect([4, 3, 9], [1, 50, 2], 3, 2, seededRandom(1))).toBe(1);
  });

  it('breaks latency ties at random', () => {
    const random = seededRandom(2);
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) seen.add(hotColdSelect([0, 0, 0], [5, 5, 9], 3, 1, random));
    expect([...seen].sort()).toEqual([0, 1]);
  });
});

describe('Prequal policy', () => {
  function setup() {
    const clock = new ManualClock();
    const b = createBalancer('Prequal', { clock, random: seededRandom(3) }) as Prequal;
    const eps = [endpoint('a'), endpoint('b'), endpoint('c'), endpoint('d')];
    for (let i = 0; i < 40; i++) b.pick(eps); // every endpoint tracked
    eps.forEach((e, i) => b.onCallEnded(e, req, ok(i === 3 ? 2 : 10))); // d is the fastest
    return { clock, b, eps };
  }

  it('scales the latency estimate with RIF (Little) and floors it at the oldest open call', () => {
    const { clock, b, eps } = setup();
    const a = eps[0]!;
    expect(b.estimateLatencyMs(a, 0)).toBeCloseTo(10, 9);
    expect(b.estimateLatencyMs(a, 3)).toBeCloseTo(40, 9);
    a.oldestInflightStartMs = clock.now() - 300;
    expect(b.estimateLatencyMs(a, 0)).toBe(300);
  });

  it('prefers the fastest cold server, and avoids it while it is hot', () => {
    const { b, eps } = setup();
    const d = eps[3]!;
    const picks = (n: number) => Array.from({ length: n }, () => b.pick(eps).id);
    // most picks, though each use raises d's probe RIF until a fresh probe resets it (no burst herding)
    expect(picks(50).filter((id) => id === 'd').length).toBeGreaterThan(25);
    d.inflight = 12; // far above the others: hot, though its latency estimate is still lowest of all
    eps.slice(0, 3).forEach((e, i) => (e.inflight = i));
    b.onCallEnded(d, req, ok(0.1));
    expect(b.estimateLatencyMs(d, 0)).toBeLessThan(b.estimateLatencyMs(eps[0]!, 0));
    b.pick(eps); // refresh the pool's readings
    expect(picks(200)).not.toContain('d');
  });

  it('expires probes after about a second', () => {
    const { clock, b, eps } = setup();
    expect(b.poolSize).toBeGreaterThan(0);
    expect(b.poolSize).toBeLessThanOrEqual(16);
    clock.advance(1001);
    b.pick(eps.slice(0, 1)); // one new reading; the rest have aged out
    expect(b.poolSize).toBe(1);
  });

  it('keeps at most 16 probes', () => {
    const clock = new ManualClock();
    const b = createBalancer('Prequal', { clock, random: seededRandom(4) }) as Prequal;
    const eps = Array.from({ length: 100 }, (_, i) => endpoint(`e${i}`));
    for (let i = 0; i < 100; i++) b.pick(eps);
    expect(b.poolSize).toBe(16);
  });

  it('drops probes of a removed endpoint', () => {
    const { b, eps } = setup();
    const before = b.poolSize;
    b.onEndpointRemoved('d');
    expect(b.poolSize).toBe(before - 1);
    for (let i = 0; i < 50; i++) expect(b.pick(eps.slice(0, 3)).id).not.toBe('d');
  });
});
