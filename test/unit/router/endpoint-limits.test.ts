import { pino } from 'pino';
import type { Endpoint } from '../../../src/balancer/types.js';
import { FixedLimit, Limiter, type Limit, type Token } from '../../../src/limit/index.js';
import { ScaledLimit, createAdmission } from '../../../src/router/admission.js';
import { releaseOutcome } from '../../../src/limit/index.js';
import { choose, chooseNow, type Choosable, type ChooseContext } from '../../../src/router/choose.js';
import { PoolState } from '../../../src/router/pool-state.js';
import { DEFAULT_SESSION_POOL } from '../../../src/router/session-pool.js';
import { poolRoute } from '../../../src/router/table.js';
import { LimiterAdmission } from '../../../src/router/admission.js';
import { Status } from '../../../src/grpc/status.js';
import { seededRandom } from '../../../src/util/clock.js';
import { ManualTimers } from '../../../src/util/timers.js';

// Per-endpoint adaptive concurrency (DESIGN.md §5): each endpoint's limiter is consulted after the
// pick; a full endpoint is skipped, and only when all are full does a call wait briefly or get shed.

class Ep implements Choosable {
  readonly ep: Endpoint;
  constructor(
    address: string,
    readonly limiter: Limiter | undefined,
  ) {
    this.ep = { id: address, address, inflight: 0 };
  }
}

/** A balancer stand-in: prefers endpoints in the order of `preference`, and records what it was shown. */
function ctxFor(
  preference: string[],
  opts: Partial<ChooseContext<Ep>> & { refuse?: Set<string> } = {},
): ChooseContext<Ep> & { shown: string[][] } {
  const shown: string[][] = [];
  return {
    shown,
    pick: (eps) => {
      shown.push(eps.map((e) => e.address));
      const rank = (e: Endpoint) => preference.indexOf(e.address);
      return [...eps].sort((a, b) => rank(a) - rank(b))[0] as Endpoint;
    },
    admit: (st) => !opts.refuse?.has(st.ep.address),
    priority: opts.priority ?? 'default',
    deadlineMs: opts.deadlineMs ?? Infinity,
  };
}

function setup(limits: number[], options = {}) {
  const timers = new ManualTimers(1000);
  const eps = limits.map(
    (l, i) =>
      new Ep(`e${i}`, new Limiter(new FixedLimit({ initialLimit: l }), { clock: timers, timers }, options)),
  );
  return { timers, eps };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('choosing an endpoint under per-endpoint limits', () => {
  it('takes the balancer’s choice while it has a slot, holding one slot of its limiter', () => {
    const { eps } = setup([2, 2]);
    const ctx = ctxFor(['e1', 'e0']);
    const c = chooseNow([...eps], ctx);
    expect(c?.st.ep.address).toBe('e1');
    expect(eps[1]?.limiter?.inflight).toBe(1);
    expect(eps[0]?.limiter?.inflight).toBe(0);
    c?.token?.release('success', 3);
    expect(eps[1]?.limiter?.inflight).toBe(0);
  });

  it('skips an endpoint at its limit for the next choice, without waiting', () => {
    const { eps, timers } = setup([1, 1, 1]);
    const ctx = ctxFor(['e0', 'e1', 'e2']);
    const first = chooseNow([...eps], ctx);
    const second = chooseNow([...eps], ctx);
    const third = chooseNow([...eps], ctx);
    expect([first, second, third].map((c) => c?.st.ep.address)).toEqual(['e0', 'e1', 'e2']);
    // The balancer was asked again among the rest each time one was full.
    expect(ctx.shown).toEqual([
      ['e0', 'e1', 'e2'],
      ['e0', 'e1', 'e2'],
      ['e1', 'e2'],
      ['e0', 'e1', 'e2'],
      ['e1', 'e2'], // e2 alone needs no pick
    ]);
    expect(timers.size).toBe(0);
    const full: Ep[] = [];
    expect(chooseNow([...eps], ctx, full)).toBeUndefined();
    expect(full.map((e) => e.ep.address)).toEqual(['e0', 'e1', 'e2']);
  });

  it('an endpoint whose breaker refuses gives its slot back and is passed over', () => {
    const { eps } = setup([1, 1]);
    const ctx = ctxFor(['e0', 'e1'], { refuse: new Set(['e0']) });
    const c = chooseNow([...eps], ctx);
    expect(c?.st.ep.address).toBe('e1');
    expect(eps[0]?.limiter?.inflight).toBe(0);
    expect(chooseNow([eps[0] as Ep], ctx)).toBeUndefined();
  });

  it('without limiters it is the balancer’s choice and no token', () => {
    const eps = [new Ep('a', undefined), new Ep('b', undefined)];
    const c = chooseNow([...eps], ctxFor(['b', 'a']));
    expect(c).toEqual({ st: eps[1], token: undefined });
  });

  it('when every endpoint is full, waits on the preferred one and gets the slot it frees', async () => {
    const { eps, timers } = setup([1, 1]);
    const ctx = ctxFor(['e1', 'e0']);
    const held = [chooseNow([...eps], ctx), chooseNow([...eps], ctx)];
    const box: { got?: Awaited<ReturnType<typeof choose<Ep>>> } = {};
    void choose([...eps], ctx).then((r) => (box.got = r));
    await flush();
    expect(box).toEqual({});
    timers.advance(2);
    held[1]?.token?.release('success'); // e0 frees a slot (e1 was preferred, but waits are per endpoint)
    await flush();
    expect(box).toEqual({});
    held[0]?.token?.release('success'); // e1 frees one: the waiter on e1 takes it
    await flush();
    const got = box.got;
    expect(got && 'st' in got ? got.st.ep.address : got).toBe('e1');
  });

  it('sheds when no slot frees within the limiter’s wait, or at once with no time left', async () => {
    const { eps, timers } = setup([1], { maxWaitMs: 5 });
    const ctx = ctxFor(['e0']);
    chooseNow([...eps], ctx);
    const waiting = choose([...eps], ctx);
    timers.advance(5);
    const r = await waiting;
    expect(r && 'shed' in r ? r.shed : r).toMatch(
      /every endpoint is at its concurrency limit; e0: .*waited 5ms/,
    );
    const late = await choose([...eps], { ...ctx, deadlineMs: timers.now() });
    expect(late && 'shed' in late ? late.shed : late).toMatch(/no time left/);
  });

  it('sheds sheddable calls first and lets critical ones through (the limiter’s reserves)', async () => {
    // limit 4: sheddable may hold 3 slots, default 4, critical 4.
    const { eps, timers } = setup([4, 4], { maxWaitMs: 5 });
    const order = ['e0', 'e1'];
    const results: string[] = [];
    const tokens: Token[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await Promise.race([
        choose([...eps], ctxFor(order, { priority: 'sheddable' })),
        flush().then(() => 'waiting' as const),
      ]);
      if (r === 'waiting') {
        results.push('waiting');
        timers.advance(5);
        continue;
      }
      if (r && 'token' in r) tokens.push(r.token as Token);
      results.push(r && 'st' in r ? r.st.ep.address : 'shed');
    }
    expect(results).toEqual(['e0', 'e0', 'e0', 'e1', 'e1', 'e1', 'waiting', 'waiting']);
    const critical = [
      chooseNow([...eps], ctxFor(order, { priority: 'critical' })),
      chooseNow([...eps], ctxFor(order, { priority: 'critical' })),
    ];
    expect(critical.map((c) => c?.st.ep.address)).toEqual(['e0', 'e1']);
    expect(chooseNow([...eps], ctxFor(order, { priority: 'critical' }))).toBeUndefined();
    for (const t of tokens) t.release('success');
  });

  it('a waiting sheddable call is displaced by a critical one when the queue is full', async () => {
    const { eps, timers } = setup([1], { maxWaitMs: 5, maxQueue: 1 });
    chooseNow([...eps], ctxFor(['e0'], { priority: 'critical' }));
    const sheddable = choose([...eps], ctxFor(['e0'], { priority: 'sheddable' }));
    const critical = choose([...eps], ctxFor(['e0'], { priority: 'critical' }));
    const s = await sheddable;
    expect(s && 'shed' in s ? s.shed : s).toMatch(/displaced by a higher-priority call/);
    timers.advance(5);
    const c = await critical;
    expect(c && 'shed' in c ? c.shed : c).toMatch(/critical call shed/);
  });
});

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
      { algorithm: 'Fixed', initialLimit: 2, minLimit: 1, maxLimit: 2 },
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
