import { pino } from 'pino';
import { resolveConcurrency } from '../../../src/api/resolve.js';
import type { Limit } from '../../../src/limit/index.js';
import { ScaledLimit, createAdmission } from '../../../src/router/admission.js';
import { releaseOutcome } from '../../../src/limit/index.js';
import { PoolState } from '../../../src/router/pool-state.js';
import { DEFAULT_SESSION_POOL } from '../../../src/router/session-pool.js';
import { poolRoute } from '../../../src/router/table.js';
import { LimiterAdmission } from '../../../src/router/admission.js';
import { Status } from '../../../src/grpc/status.js';
import { seededRandom } from '../../../src/util/clock.js';
import { ManualTimers } from '../../../src/util/timers.js';

// Adaptive concurrency in the router: the pool's limit over its endpoints, and each endpoint's own
// limiter (the Picker consults it after the pick: test/unit/balancer/picker.test.ts).

describe('the pool limit over n endpoints', () => {
  class Spy implements Limit {
    readonly name = 'Spy';
    samples: number[] = [];
    constructor(public limit: number) {}
    onSample(_s: number, _r: number, inflight: number): void {
      this.samples.push(inflight);
    }
  }

  it('is the per-endpoint limit times the endpoints, and shows the inner limit in-flight per endpoint', () => {
    let n = 4;
    const spy = new Spy(5);
    const scaled = new ScaledLimit(spy, () => n);
    expect(scaled.limit).toBe(20);
    scaled.onSample(0, 10, 9, false);
    expect(spy.samples).toEqual([3]);
    n = 0;
    expect(scaled.limit).toBe(5); // never below one endpoint's worth
    n = 2;
    spy.limit = 7;
    expect(scaled.limit).toBe(14);
  });

  it('createAdmission scales with the live endpoint count', () => {
    const timers = new ManualTimers(0);
    let n = 3;
    const a = createAdmission(
      resolveConcurrency({ algorithm: 'Fixed', initialLimit: 2, minLimit: 1, maxLimit: 2 }),
      { clock: timers, timers, random: seededRandom(1) },
      () => n,
    );
    expect(a).toBeInstanceOf(LimiterAdmission);
    expect((a as LimiterAdmission).limiter.limit).toBe(6);
    n = 5;
    expect((a as LimiterAdmission).limiter.limit).toBe(10);
  });

  it('the router’s own sheds do not feed the limit; server load signals do', () => {
    expect(releaseOutcome(Status.RESOURCE_EXHAUSTED)).toBe('dropped');
    expect(releaseOutcome(Status.OK)).toBe('success');
    expect(releaseOutcome(Status.CANCELLED)).toBe('ignore');
  });
});

describe('PoolState', () => {
  const deps = () => {
    const timers = new ManualTimers(0);
    return {
      clock: timers,
      timers,
      random: seededRandom(7),
      log: pino({ level: 'silent' }),
      sessionOptions: DEFAULT_SESSION_POOL,
    };
  };
  const route = (endpoints: string[], concurrency?: Record<string, unknown>) =>
    poolRoute({
      name: 'p',
      match: { services: ['x.Y'] },
      endpoints: endpoints.map((address) => ({ address })),
      ...(concurrency ? { concurrency } : {}),
    } as Parameters<typeof poolRoute>[0]);

  it('gives each endpoint its own limiter from spec.concurrency, and the pool their sum', () => {
    const pool = new PoolState(
      route(['a:1', 'b:1'], { algorithm: 'Fixed', initialLimit: 3, minLimit: 1, maxLimit: 3 }),
      deps(),
    );
    try {
      const [a, b] = [...pool.endpoints.values()];
      expect(a?.concurrencyLimit).toBe(3);
      expect(b?.concurrencyLimit).toBe(3);
      expect(a?.limiter).not.toBe(b?.limiter);
      expect((pool.admission as LimiterAdmission).limiter.limit).toBe(6);
      // A third endpoint joins with a limiter of its own; the pool's limit follows.
      pool.update(
        route(['a:1', 'b:1', 'c:1'], { algorithm: 'Fixed', initialLimit: 3, minLimit: 1, maxLimit: 3 }),
      );
      expect(pool.endpoints.get('c:1')?.concurrencyLimit).toBe(3);
      expect(pool.endpoints.get('a:1')?.limiter).toBe(a?.limiter); // kept across a table
      expect((pool.admission as LimiterAdmission).limiter.limit).toBe(9);
      // A new spec starts every limiter afresh; no spec removes them.
      pool.update(route(['a:1', 'b:1'], { algorithm: 'Fixed', initialLimit: 2, minLimit: 1, maxLimit: 2 }));
      expect(pool.endpoints.get('a:1')?.concurrencyLimit).toBe(2);
      pool.update(route(['a:1', 'b:1']));
      expect(pool.endpoints.get('a:1')?.limiter).toBeUndefined();
      expect(pool.admission).not.toBeInstanceOf(LimiterAdmission);
    } finally {
      pool.destroy();
    }
  });

  it('no spec.concurrency: no limiters anywhere', () => {
    const pool = new PoolState(route(['a:1']), deps());
    try {
      expect(pool.endpoints.get('a:1')?.concurrencyLimit).toBeUndefined();
    } finally {
      pool.destroy();
    }
  });
});
