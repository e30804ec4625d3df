import { POLICIES } from '../../../src/api/backendpool.js';
import { balancerNames, createBalancer, type Endpoint } from '../../../src/balancer/index.js';
import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { isSibylError } from '../../../src/util/errors.js';
import { endpoint, run, type ServerSpec } from './harness.js';

/**
 * Every registered policy through the same cases (undici's habit: one suite shared by every store).
 * Load-oblivious baselines cannot steer away from a slow or failing server; for them those cases only
 * check that they do no worse than an even split.
 */
const LOAD_OBLIVIOUS = new Set(['RoundRobin']);
const fast: ServerSpec = { serviceMs: 10 };
const req = { method: '/test.Svc/Get', payloadBytes: 512 };

it('registers every policy the API names', () => {
  expect(balancerNames()).toEqual(expect.arrayContaining([...POLICIES]));
});

it('refuses an unknown policy with a typed error', () => {
  const deps = { clock: new ManualClock(), random: seededRandom(1) };
  expect(() => createBalancer('Nope', deps)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  try {
    createBalancer('Nope', deps);
  } catch (e) {
    expect(isSibylError(e, 'ERR_CONFIG_INVALID')).toBe(true);
  }
});

describe.each(balancerNames())('%s', (policy) => {
  const oblivious = LOAD_OBLIVIOUS.has(policy);

  it('always picks one of the candidates, never another endpoint', () => {
    const clock = new ManualClock();
    const random = seededRandom(42);
    const b = createBalancer(policy, { clock, random: seededRandom(7) });
    for (const size of [2, 5, 16, 17, 40]) {
      const pool = Array.from({ length: size }, (_, i) => endpoint(`p${size}-${i}`));
      for (let n = 0; n < 500; n++) {
        // a changing subset, as breakers open and close, with varied load
        const candidates = pool.filter(() => random() < 0.6);
        if (candidates.length === 0) candidates.push(pool[0]!);
        for (const ep of pool) ep.inflight = Math.floor(random() * 4);
        const ep = b.pick(candidates, req);
        expect(candidates).toContain(ep);
        clock.advance(random() * 50);
        b.onCallEnded(ep, req, { ok: random() < 0.9, code: 0, latencyMs: random() * 20, startedAtMs: 0 });
      }
    }
  });

  it('returns the single candidate', () => {
    const clock = new ManualClock();
    const b = createBalancer(policy, { clock, random: seededRandom(3) });
    const only = endpoint('only');
    for (let n = 0; n < 100; n++) {
      expect(b.pick([only], req)).toBe(only);
      clock.advance(5);
      b.onCallEnded(only, req, { ok: n % 3 !== 0, code: n % 3 ? 0 : 14, latencyMs: 5, startedAtMs: 0 });
    }
  });

  it('is deterministic for a given seed', () => {
    const servers = [fast, fast, { serviceMs: 20 }, fast];
    const a = run({ policy, servers, calls: 1500, seed: 5 });
    const b = run({ policy, servers, calls: 1500, seed: 5 });
    expect(b.picks).toEqual(a.picks);
  });

  it('spreads load over identical endpoints roughly evenly', () => {
    for (const seed of [1, 2]) {
      const r = run({ policy, servers: [fast, fast, fast, fast, fast], calls: 5000, seed });
      for (let i = 0; i < 5; i++) {
        expect(r.share[`ep-${i}`]).toBeGreaterThan(0.2 * 0.75);
        expect(r.share[`ep-${i}`]).toBeLessThan(0.2 * 1.25);
      }
    }
  });

  it('moves traffic away from an endpoint whose calls are slow', () => {
    const r = run({ policy, servers: [{ serviceMs: 50 }, fast, fast, fast, fast], calls: 5000 });
    if (oblivious) expect(r.share['ep-0']).toBeLessThanOrEqual(0.2 + 0.01);
    else expect(r.share['ep-0']).toBeLessThan(0.2 * 0.5);
  });

  it('moves traffic away from an endpoint whose calls fail fast (no sinkholing)', () => {
    const r = run({
      policy,
      servers: [{ serviceMs: 10, failFast: true }, fast, fast, fast, fast],
      calls: 5000,
    });
    if (oblivious) expect(r.share['ep-0']).toBeLessThanOrEqual(0.2 + 0.01);
    else {
      expect(r.share['ep-0']).toBeLessThan(0.2 * 0.25);
      expect(r.errors).toBeLessThan(5000 * 0.2 * 0.25);
    }
  });

  it('handles removal: never picks a removed endpoint, and forgets what it knew of it', () => {
    // ep-0 fails fast, then leaves; ep-4 leaves with calls still open; ep-0 comes back healthy.
    const r = run({
      policy,
      servers: [{ serviceMs: 10, failFast: true }, fast, fast, fast, { serviceMs: 40 }],
      calls: 6000,
      changes: [
        { atCall: 2000, remove: 'ep-0' },
        { atCall: 2000, remove: 'ep-4' },
        { atCall: 3000, add: { id: 'ep-0', spec: fast } },
      ],
    });
    const gone = r.picks.slice(2000, 3000);
    expect(gone).not.toContain('ep-0');
    expect(r.picks.slice(2000)).not.toContain('ep-4');
    // back as a healthy server, it gets close to a fair share of 4 (no stale penalty carried over)
    const late = r.picks.slice(3200, 4200);
    expect(late.filter((id) => id === 'ep-0').length / late.length).toBeGreaterThan(0.25 * 0.5);
  });

  it('ignores outcomes for endpoints it never picked or has forgotten', () => {
    const clock = new ManualClock();
    const b = createBalancer(policy, { clock, random: seededRandom(9) });
    const stranger: Endpoint = endpoint('stranger');
    const known = [endpoint('a'), endpoint('b')];
    b.onEndpointRemoved?.('stranger');
    b.onCallEnded(stranger, req, { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 });
    expect(known).toContain(b.pick(known, req));
  });
});
