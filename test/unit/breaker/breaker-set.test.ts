import { BREAKER_STATES } from '../../../src/api/backendpool.js';
import { BreakerSet, breakerConfig, type BreakerEvent } from '../../../src/breaker/index.js';
import { ManualClock } from '../../../src/util/clock.js';

const cfg = { failureThreshold: 3, recoveryTimeoutMs: 1000, halfOpenMaxCalls: 2, maxEjectionPercent: 50 };

function setup(ids = ['a', 'b', 'c', 'd'], config: Partial<typeof cfg> = {}) {
  const clock = new ManualClock(0);
  const events: BreakerEvent[] = [];
  const set = new BreakerSet({ ...cfg, ...config }, { clock, listener: (e) => events.push(e) });
  set.sync(ids);
  const fail = (id: string, n = 1) => {
    for (let i = 0; i < n; i++) if (set.admit(id)) set.onResult(id, false);
  };
  const succeed = (id: string, n = 1) => {
    for (let i = 0; i < n; i++) if (set.admit(id)) set.onResult(id, true);
  };
  const moves = () =>
    events.map((e) =>
      e.type === 'transition' ? `${e.endpoint}:${e.from}>${e.to}:${e.reason}` : `${e.endpoint}:capped`,
    );
  return { clock, events, set, fail, succeed, moves };
}

describe('BreakerSet', () => {
  it('uses the API state names', () => {
    const { set, fail } = setup();
    expect(BREAKER_STATES).toContain(set.state('a'));
    fail('a', 3);
    expect(BREAKER_STATES).toContain(set.state('a'));
  });

  it('opens after failureThreshold failures and reports the transition with its figures', () => {
    const { set, fail, events, clock } = setup();
    clock.set(42);
    fail('a', 2);
    expect(set.state('a')).toBe('Closed');
    fail('a');
    expect(set.state('a')).toBe('Open');
    expect(events).toEqual([
      {
        type: 'transition',
        endpoint: 'a',
        from: 'Closed',
        to: 'Open',
        reason: 'failures',
        failures: 3,
        atMs: 42,
      },
    ]);
    expect(set.openCount()).toBe(1);
  });

  it('lets a success forgive one failure, not all of them', () => {
    const { set, fail, succeed } = setup();
    fail('a', 2);
    succeed('a');
    expect(set.failures('a')).toBe(1);
    fail('a');
    expect(set.state('a')).toBe('Closed');
    fail('a');
    expect(set.state('a')).toBe('Open');
    succeed('b', 5);
    expect(set.failures('b')).toBe(0); // never below zero
  });

  it('refuses calls while open and ignores late results', () => {
    const { set, fail } = setup();
    fail('a', 3);
    expect(set.allows('a')).toBe(false);
    expect(set.admit('a')).toBe(false);
    set.onResult('a', true); // a call admitted before it opened
    expect(set.state('a')).toBe('Open');
  });

  it('goes half-open after recoveryTimeout and admits at most halfOpenMaxCalls trials at once', () => {
    const { set, fail, clock, moves } = setup();
    fail('a', 3);
    clock.advance(999);
    expect(set.state('a')).toBe('Open');
    clock.advance(1);
    expect(set.state('a')).toBe('HalfOpen');
    expect(moves()).toContain('a:Open>HalfOpen:recovery-timeout');
    expect(set.openCount()).toBe(1); // half-open still counts as ejected
    expect(set.admit('a')).toBe(true);
    expect(set.admit('a')).toBe(true);
    expect(set.allows('a')).toBe(false);
    expect(set.admit('a')).toBe(false);
    set.release('a'); // a trial was cancelled: its slot is free again
    expect(set.admit('a')).toBe(true);
  });

  it('closes after halfOpenMaxCalls successful trials', () => {
    const { set, fail, clock, moves } = setup();
    fail('a', 3);
    clock.advance(1000);
    expect(set.admit('a')).toBe(true);
    expect(set.admit('a')).toBe(true);
    set.onResult('a', true);
    expect(set.state('a')).toBe('HalfOpen');
    set.onResult('a', true);
    expect(set.state('a')).toBe('Closed');
    expect(set.failures('a')).toBe(0);
    expect(set.openCount()).toBe(0);
    expect(moves()).toEqual([
      'a:Closed>Open:failures',
      'a:Open>HalfOpen:recovery-timeout',
      'a:HalfOpen>Closed:trials-succeeded',
    ]);
  });

  it('reopens on any half-open failure, with a fresh recovery timer', () => {
    const { set, fail, clock, moves } = setup();
    fail('a', 3);
    clock.advance(1000);
    set.admit('a');
    set.admit('a');
    set.onResult('a', true);
    set.onResult('a', false);
    expect(set.state('a')).toBe('Open');
    expect(moves()).toContain('a:HalfOpen>Open:trial-failed');
    clock.advance(999);
    expect(set.state('a')).toBe('Open');
    clock.advance(1);
    expect(set.state('a')).toBe('HalfOpen');
  });

  it('ignores a result in half-open from a call that is not a trial', () => {
    const { set, fail, clock } = setup();
    fail('a', 3);
    clock.advance(1000);
    expect(set.state('a')).toBe('HalfOpen');
    set.onResult('a', false); // started long before; no trial admitted yet
    expect(set.state('a')).toBe('HalfOpen');
  });

  it('never ejects more than maxEjectionPercent of the pool; a capped opening stays Closed and is reported once', () => {
    const { set, fail, succeed, clock, events } = setup(); // 4 endpoints, 50% → at most 2
    fail('a', 3);
    fail('b', 3);
    expect(set.openCount()).toBe(2);
    clock.set(7);
    fail('c', 3);
    fail('c', 2);
    expect(set.state('c')).toBe('Closed');
    expect(set.openCount()).toBe(2);
    expect(events.filter((e) => e.type === 'capped')).toEqual([
      { type: 'capped', endpoint: 'c', failures: 3, ejected: 2, maxEjected: 2, atMs: 7 },
    ]);
    // b recovers; c's next failure opens it
    clock.advance(1000);
    succeed('b', 2);
    expect(set.state('b')).toBe('Closed');
    fail('c');
    expect(set.state('c')).toBe('Open');
    expect(set.openCount()).toBe(2);
  });

  it('reports a capped endpoint again after it dropped below the threshold', () => {
    const { set, fail, succeed, events } = setup();
    fail('a', 3);
    fail('b', 3);
    fail('c', 3);
    succeed('c');
    expect(set.failures('c')).toBe(2);
    fail('c');
    expect(set.state('c')).toBe('Closed');
    expect(events.filter((e) => e.type === 'capped')).toHaveLength(2);
  });

  it('ejects at least one endpoint when the percentage is above zero, none at zero', () => {
    const one = setup(['solo']);
    one.fail('solo', 3);
    expect(one.set.state('solo')).toBe('Open');
    const none = setup(['a', 'b'], { maxEjectionPercent: 0 });
    none.fail('a', 10);
    expect(none.set.state('a')).toBe('Closed');
    expect(none.set.maxEjected()).toBe(0);
  });

  it('obeys operator overrides: held open without recovery, cleared to closed', () => {
    const { set, clock, moves } = setup();
    set.forceOpen('a');
    expect(set.state('a')).toBe('Open');
    expect(set.admit('a')).toBe(false);
    clock.advance(60_000);
    expect(set.state('a')).toBe('Open');
    set.clearOverride('a');
    expect(set.state('a')).toBe('Closed');
    expect(set.admit('a')).toBe(true);
    expect(moves()).toEqual(['a:Closed>Open:operator-open', 'a:Open>Closed:operator-clear']);
    expect(set.openCount()).toBe(0);
  });

  it('applies an override even beyond the cap, and to an endpoint that arrives later', () => {
    const { set, fail } = setup();
    fail('a', 3);
    fail('b', 3);
    set.forceOpen('c');
    expect(set.openCount()).toBe(3);
    set.forceOpen('later');
    expect(set.state('later')).toBe('Closed'); // unknown yet: admitted
    set.sync(['a', 'b', 'c', 'd', 'later']);
    expect(set.state('later')).toBe('Open');
    expect(set.snapshot().find((s) => s.endpoint === 'later')).toEqual({
      endpoint: 'later',
      state: 'Open',
      failures: 0,
      forced: true,
    });
  });

  it('follows membership: drops gone endpoints, admits unknown ones and ignores their results', () => {
    const { set, fail } = setup();
    fail('a', 3);
    expect(set.openCount()).toBe(1);
    set.sync(['b', 'c', 'd', 'e']);
    expect(set.openCount()).toBe(0);
    expect(set.state('a')).toBe('Closed');
    expect(set.admit('zzz')).toBe(true);
    set.onResult('zzz', false);
    expect(set.snapshot().map((s) => s.endpoint)).toEqual(['b', 'c', 'd', 'e']);
  });

  it('takes new settings without losing state', () => {
    const { set, fail } = setup();
    fail('a', 2);
    set.configure({ ...cfg, failureThreshold: 2 });
    fail('a');
    expect(set.state('a')).toBe('Open');
  });

  it('reads its settings from a BackendPool spec, with CRD defaults', () => {
    expect(breakerConfig({ recoveryTimeout: '1m30s', failureThreshold: 7 })).toEqual({
      failureThreshold: 7,
      recoveryTimeoutMs: 90_000,
      halfOpenMaxCalls: 3,
      maxEjectionPercent: 50,
    });
    expect(breakerConfig(undefined).recoveryTimeoutMs).toBe(30_000);
  });
});
