import type { Predictive, PredictiveFeatures } from '../../../src/balancer/predictive.js';
import {
  createBalancer,
  type Endpoint,
  type PickRequest,
  type PredictFn,
} from '../../../src/balancer/index.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { endpoint } from './harness.js';

const req: PickRequest = { method: '/t.S/Get', payloadBytes: 1024 };
const T0 = 100_000;

function setup(options: Record<string, unknown> = {}, seed = 1, predict?: PredictFn) {
  const clock = new ManualClock(T0);
  const deps = { clock, random: seededRandom(seed), ...(predict ? { predict } : {}) };
  const b = createBalancer('Predictive', deps, { exploration: 0, ...options }) as Predictive;
  return { clock, b };
}
function hinted(id: string, predictedLatencyMs: number, ageMs = 0): Endpoint {
  return { ...endpoint(id), hints: { predictedLatencyMs, atMs: T0 - ageMs } };
}
function count(b: Predictive, eps: Endpoint[], n: number, r = req): Record<string, number> {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = b.pick(eps, r).id;
    c[id] = (c[id] ?? 0) + 1;
  }
  return c;
}

describe('Predictive', () => {
  it("follows the operator's fresh predictions", () => {
    const { b } = setup();
    expect(count(b, [hinted('slow', 50), hinted('fast', 5)], 100)).toEqual({ fast: 100 });
  });

  it('charges stale hints for their age: an old "fast" figure loses to a fresh ordinary one', () => {
    const { b } = setup();
    const fresh = hinted('fresh', 10);
    const stale = hinted('stale', 1, 60_000);
    // stale prior → baseline × (1 + stalenessPenalty) = 10 × 1.5 (no own data yet: default baseline)
    expect(b.score(stale, req)).toBeCloseTo(Math.exp(-6) * 1 + (1 - Math.exp(-6)) * 15, 6);
    expect(b.score(fresh, req)).toBeCloseTo(10, 9);
    expect(count(b, [stale, fresh], 100)).toEqual({ fresh: 100 });
  });

  it("explores at the configured rate with probes, and the client's call still goes to the best", () => {
    const eps = [hinted('best', 1), hinted('b', 20), hinted('c', 20), hinted('d', 20)];
    const n = 20_000;
    const run = (e: number) => {
      const { b } = setup({ exploration: e }, 7);
      const picks = count(b, eps, n);
      let probed = 0;
      let onPicked = 0;
      for (let i = 0; i < n; i++) {
        const picked = b.pick(eps, req);
        const t = b.probeTarget(eps, req, picked);
        if (t) probed++;
        if (t === picked) onPicked++;
      }
      expect(onPicked).toBe(0); // the client's call measures its own endpoint
      return { picks, probed };
    };
    expect(run(0)).toEqual({ picks: { best: n }, probed: 0 });
    // the client's calls never go elsewhere; a uniform random target is another than the best 3/4 of the time
    const r = run(0.2);
    expect(r.picks).toEqual({ best: n });
    expect(r.probed / n).toBeCloseTo(0.2 * 0.75, 2);
    expect(run(0.05).probed / n).toBeCloseTo(0.05 * 0.75, 2);
  });

  it("with probeMode 'call', explores with the client's own calls (the behaviour before probes)", () => {
    const eps = [hinted('best', 1), hinted('b', 20), hinted('c', 20), hinted('d', 20)];
    const n = 20_000;
    const { b } = setup({ exploration: 0.2, probeMode: 'call' }, 7);
    expect((n - (count(b, eps, n).best ?? 0)) / n).toBeCloseTo(0.2 * 0.75, 2);
    expect(b.probeTarget(eps, req, eps[0]!)).toBeUndefined();
  });

  it('names for a probe only a server where nothing of ours is open, and hardly ever a failing one', () => {
    const { clock, b } = setup({ exploration: 1 }, 5);
    const [best, busy, failing] = [hinted('best', 1), hinted('busy', 20), hinted('failing', 20)];
    busy.inflight = 1;
    busy.oldestInflightStartMs = T0;
    b.pick([failing], req);
    for (let i = 0; i < 20; i++) {
      clock.advance(1);
      b.onCallEnded(failing, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    }
    const eps = [best, busy, failing];
    const targets: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) {
      const t = b.probeTarget(eps, req, b.pick(eps, req));
      if (t) targets[t.id] = (targets[t.id] ?? 0) + 1;
    }
    expect(targets.busy).toBeUndefined();
    expect(targets.failing ?? 0).toBeLessThan(20);
    expect(b.probeTarget([best], req, best)).toBeUndefined(); // one endpoint: nothing to explore
  });

  it('explores a server it has not heard from lately up to 4× as often', () => {
    const { clock, b } = setup({ exploration: 0.05 }, 11);
    const [best, stale] = [hinted('best', 1), hinted('stale', 20)];
    b.pick([best], req);
    b.pick([stale], req);
    for (let i = 0; i < 5; i++) b.onCallEnded(best, req, ok(1)); // the method's baseline first
    b.onCallEnded(stale, req, ok(20));
    const rate = () => {
      let probed = 0;
      for (let i = 0; i < 20_000; i++) if (b.probeTarget([best, stale], req, best)) probed++;
      return probed / 20_000;
    };
    expect(rate()).toBeCloseTo(0.05 / 2, 2); // fresh samples: the base rate, half the draws name best
    clock.advance(60_000); // many memoryMs later
    expect(rate()).toBeCloseTo((4 * 0.05) / 2, 2);
  });

  it('counts its own calls in flight, so routers do not herd onto one server', () => {
    const { b } = setup();
    const [x, y] = [hinted('x', 10), hinted('y', 10)];
    x.inflight = 2;
    expect(count(b, [x, y], 50)).toEqual({ y: 50 });
  });

  it('sees a pause at once through the age of the oldest unanswered call', () => {
    const { b } = setup();
    const paused = hinted('paused', 5);
    paused.inflight = 1;
    paused.oldestInflightStartMs = T0 - 300;
    expect(b.score(paused, req)).toBeGreaterThanOrEqual(300);
    expect(count(b, [paused, hinted('ok', 20)], 50)).toEqual({ ok: 50 });
  });

  it('charges only the age beyond a service time: one long call of ours is not a stall', () => {
    const { b } = setup();
    // a 4-slot server running one 25 ms call of ours for 20 ms: a new 10 ms call starts at once
    const busy = hinted('busy', 10);
    busy.inflight = 1;
    busy.oldestInflightStartMs = T0 - 20;
    const f = { ...b.features(busy, req, 10, T0) };
    expect(b.score(busy, req)).toBeCloseTo(Math.max(f.estimateMs, 20), 9);
    expect(b.score(busy, req)).toBeLessThan(20 + f.serviceMs);
    // the same call open for 300 ms: it waits that out at least
    busy.oldestInflightStartMs = T0 - 300;
    expect(b.score(busy, req)).toBeCloseTo(300, 9);
  });

  it('probes with cheap calls only: a long call is never copied to a random server', () => {
    const { clock, b } = setup({ exploration: 1 }, 3);
    const [best, other] = [hinted('best', 1), hinted('other', 30)];
    const get: PickRequest = { method: '/t.S/Get', payloadBytes: 100 };
    const search: PickRequest = { method: '/t.S/Search', payloadBytes: 100 };
    // a typical call takes ~3 ms: nine gets of 1 ms for each search of 20 ms
    b.pick([best], get);
    for (let i = 0; i < 100; i++) {
      clock.advance(1);
      b.onCallEnded(best, i % 10 ? get : search, ok(i % 10 ? 1 : 20));
    }
    const probes = (r: PickRequest) => {
      let n = 0;
      for (let i = 0; i < 200; i++) if (b.probeTarget([best, other], r, b.pick([best, other], r))) n++;
      return n;
    };
    expect(probes(search)).toBe(0);
    expect(probes(get)).toBeGreaterThan(40);
    expect(count(b, [best, other], 200, get)).toEqual({ best: 200 });
  });

  it('treats failures as expensive: a server failing fast scores worse than a slow healthy one', () => {
    const { clock, b } = setup();
    const [sink, slow] = [hinted('sink', 5), hinted('slow', 40)];
    b.pick([sink], req);
    b.pick([slow], req);
    for (let i = 0; i < 10; i++) {
      clock.advance(1);
      b.onCallEnded(sink, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    }
    expect(b.score(sink, req)).toBeGreaterThan(500);
    expect(count(b, [sink, slow], 50)).toEqual({ slow: 50 });
  });

  it('sets aside the failures that opened a breaker once it lets the endpoint be tried again', () => {
    const { clock, b } = setup();
    const sink = hinted('sink', 5);
    b.pick([sink], req);
    for (let i = 0; i < 10; i++) {
      clock.advance(1);
      b.onCallEnded(sink, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    }
    expect(b.score(sink, req)).toBeGreaterThan(500);
    b.onEndpointReadmitted('sink');
    expect(b.score(sink, req)).toBeCloseTo(b.score(hinted('twin', 5), req), 9); // as if it never failed
  });

  it("shrinks the fleet's error rate in when fresh", () => {
    const { b } = setup();
    const e: Endpoint = { ...endpoint('e'), hints: { predictedLatencyMs: 10, errorRate: 0.5, atMs: T0 } };
    expect(b.score(e, req)).toBeCloseTo(0.5 * 10 + 0.5 * 1000, 9);
  });

  it('normalises its own latencies by method and payload', () => {
    const { clock, b } = setup();
    const [big, small] = [endpoint('big'), endpoint('small')];
    b.pick([big], req);
    b.pick([small], req);
    // both serve at 1 ms + 0.5 ms/KiB; one only ever gets large requests
    for (let i = 0; i < 200; i++) {
      clock.advance(5);
      const kib = 50 + (i % 10) * 10;
      b.onCallEnded(big, { ...req, payloadBytes: kib * 1024 }, ok(1 + 0.5 * kib));
      b.onCallEnded(small, { ...req, payloadBytes: 1024 }, ok(1.5));
    }
    const ratio = (ep: Endpoint) => ({ ...b.features(ep, req, 1.5, clock.now()) }).latencyRatio;
    expect(ratio(big)).toBeCloseTo(1, 1);
    expect(ratio(small)).toBeCloseTo(1, 1);
  });

  it('learns how each endpoint treats each kind of call: slow for one method, or for large payloads only', () => {
    const { clock, b } = setup();
    const [cold, disk, fine] = [endpoint('cold'), endpoint('disk'), endpoint('fine')];
    for (const ep of [cold, disk, fine]) b.pick([ep], req);
    const search = (kib: number): PickRequest => ({ method: '/t.S/Search', payloadBytes: kib * 1024 });
    const get = (kib: number): PickRequest => ({ method: '/t.S/Get', payloadBytes: kib * 1024 });
    // every call costs 2 ms + 0.1 ms/KiB; "cold" runs Search 4× slower, "disk" pays 5× per KiB
    const cost = (ep: Endpoint, r: PickRequest) => {
      const kib = r.payloadBytes / 1024;
      const base = 2 * (ep === cold && r.method === '/t.S/Search' ? 4 : 1);
      return base + 0.1 * kib * (ep === disk ? 5 : 1);
    };
    for (let i = 0; i < 400; i++) {
      clock.advance(5);
      const r = (i % 2 === 0 ? search : get)(1 + (i % 7) * 20);
      for (const ep of [cold, disk, fine]) b.onCallEnded(ep, r, ok(cost(ep, r)));
    }
    const ratio = (ep: Endpoint, r: PickRequest) => b.features(ep, r, 1, clock.now()).latencyRatio;
    const ratios = (r: PickRequest) => [cold, disk, fine].map((ep) => ratio(ep, r));
    // a cold index: Search far dearer there than elsewhere, Get as good as elsewhere
    expect(ratio(cold, search(1)) / ratio(fine, search(1))).toBeGreaterThan(3);
    expect(ratio(cold, get(1)) / ratio(fine, get(1))).toBeLessThan(1.3);
    // a slow disk: large calls dearer there, small ones not
    expect(ratio(disk, get(120)) / ratio(fine, get(120))).toBeGreaterThan(2);
    expect(ratio(disk, get(1)) / ratio(fine, get(1))).toBeLessThan(1.3);
    // the cheapest endpoint per kind of call is the right one
    const best = (r: PickRequest) => ratios(r).indexOf(Math.min(...ratios(r)));
    expect(best(search(1))).not.toBe(0);
    expect(best(get(120))).not.toBe(1);
  });

  it('sees no structure where there is one kind of call, and forgets it with the ratio once avoided', () => {
    const { clock, b } = setup();
    const [slow, fast] = [endpoint('slow'), endpoint('fast')];
    for (const ep of [slow, fast]) b.pick([ep], req);
    const random = seededRandom(9);
    for (let i = 0; i < 300; i++) {
      clock.advance(5);
      const kib = 1 + (i % 10) * 0.1; // payloads spread, cost flat: any fitted slope is noise
      const noise = 0.8 + 0.4 * random();
      b.onCallEnded(slow, { ...req, payloadBytes: kib * 1024 }, ok((i > 150 ? 50 : 3) * noise));
      b.onCallEnded(fast, { ...req, payloadBytes: kib * 1024 }, ok(3 * noise));
    }
    const ratio = (ep: Endpoint, kib: number) =>
      b.features(ep, { ...req, payloadBytes: kib * 1024 }, 3, clock.now()).latencyRatio;
    // one kind of call: the ratio alone, at every payload
    expect(ratio(fast, 0.1) / ratio(fast, 2)).toBeCloseTo(1, 1);
    expect(ratio(slow, 1)).toBeGreaterThan(3);
    // unsampled for 3 s: faded to a typical endpoint's
    clock.advance(3000);
    expect(ratio(slow, 1)).toBeLessThan(1.1);
  });

  it('takes a try the router cut (censored) as a lower bound: never a fast answer, never a failure', () => {
    const { clock, b } = setup();
    const [a, h] = [endpoint('a'), endpoint('h')];
    b.pick([a], req);
    b.pick([h], req);
    // both answer in 10 ms: the method's baseline and both ratios settle at 1
    for (let i = 0; i < 100; i++) {
      clock.advance(5);
      b.onCallEnded(a, req, ok(10));
      b.onCallEnded(h, req, ok(10));
    }
    const feats = (ep: Endpoint) => ({
      ...b.features(ep, req, b.signals.baselineMs(req, clock.now()), clock.now()),
    });
    const before = feats(h);
    // h's hedges lose their races 0.1 ms after they are sent: cancelled, a bound of 0.1 ms
    const cut = (latencyMs: number, code: number) => ({
      ok: code === 1,
      code,
      latencyMs,
      startedAtMs: clock.now() - latencyMs,
      censored: true,
    });
    for (let i = 0; i < 50; i++) b.onCallEnded(h, req, cut(0.1, 1));
    const after = feats(h);
    expect(after.latencyRatio).toBeCloseTo(before.latencyRatio, 9);
    expect(after.samples).toBeCloseTo(before.samples, 9);
    expect(after.errorRate).toBeCloseTo(before.errorRate, 9);
    expect(after.oldestInflightAgeMs).toBe(0);
    // a's tries cut at their deadline of 40 ms: slower than thought (a bound above the expectation),
    // and not failed (DEADLINE_EXCEEDED, but no failure penalty)
    for (let i = 0; i < 10; i++) b.onCallEnded(a, req, cut(40, 4));
    const slowed = feats(a);
    expect(slowed.latencyRatio).toBeGreaterThan(1.2);
    expect(slowed.errorRate).toBeCloseTo(before.errorRate, 9);
    expect(b.score(a, req)).toBeLessThan(100);
  });

  it('keeps the stall floor of a try cut for slowness until the endpoint answers again', () => {
    // Cut, the try no longer counts as open, but a paused server still holds it: new calls must not
    // go into the same pause (gc-pauses: 7× as many tries cut, and a worse p99, without this).
    const { clock, b } = setup();
    const a = endpoint('a');
    b.pick([a], req);
    for (let i = 0; i < 100; i++) {
      clock.advance(5);
      b.onCallEnded(a, req, ok(10));
    }
    const age = () => b.features(a, req, 10, clock.now()).oldestInflightAgeMs;
    const startedAtMs = clock.now() - 40;
    b.onCallEnded(a, req, { ok: false, code: 4, latencyMs: 40, startedAtMs, censored: true });
    expect(age()).toBe(40);
    clock.advance(200);
    expect(age()).toBe(240); // it grows as an open call's would
    expect(b.score(a, req)).toBeGreaterThanOrEqual(240);
    b.onCallEnded(a, req, ok(10)); // the endpoint answers: no stall
    expect(age()).toBe(0);
  });

  it('hands the features to a pluggable model and follows its predictions', () => {
    const seen: PredictiveFeatures[] = [];
    const predict = (ep: Endpoint, _r: PickRequest, f: PredictiveFeatures) => {
      seen.push({ ...f });
      return ep.id === 'model-says-fast' ? 1 : ep.id === 'unknown' ? undefined : 100;
    };
    const { b } = setup({}, 1, predict);
    const eps = [hinted('model-says-slow', 1), hinted('model-says-fast', 50)];
    eps[0]!.inflight = 3;
    expect(count(b, eps, 20)).toEqual({ 'model-says-fast': 20 });
    expect(seen.find((f) => f.inflight === 3)).toMatchObject({
      hintLatencyMs: 1,
      hintFreshness: 1,
      baselineMs: 10,
    });
    // undefined: the heuristic answers (hint 10 beats the model's 100)
    expect(count(b, [hinted('unknown', 10), hinted('x', 10)], 20)).toEqual({ unknown: 20 });
  });

  it('scores the whole pool up to 16 endpoints, else 4 sampled at random', () => {
    const pool = (n: number) => [
      hinted('best', 1),
      ...Array.from({ length: n - 1 }, (_, i) => hinted(`e${i}`, 20)),
    ];
    expect(count(setup().b, pool(16), 500).best).toBe(500);
    const best = count(setup().b, pool(40), 10_000).best ?? 0;
    expect(best / 10_000).toBeCloseTo(4 / 40, 1.5); // P(best among 4 of 40)
  });

  it('refuses a bad or unknown option: the model is a dependency, not an option', () => {
    expect(() => setup({ predict: 3 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => setup({ sampleSize: 1 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => setup({ exploration: '0.1' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
  });
});

function ok(latencyMs: number) {
  return { ok: true, code: 0, latencyMs, startedAtMs: 0 };
}
