import { FixedLimit, Limiter, type Limit, type Token } from '../../../src/limit/index.js';
import { isSibylError } from '../../../src/util/errors.js';
import { ManualTimers } from '../../../src/util/timers.js';

/** A Limit that records its samples and can be moved by hand. */
class SpyLimit implements Limit {
  readonly name = 'Spy';
  samples: Array<[number, number, number, boolean]> = [];
  constructor(public limit: number) {}
  onSample(startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    this.samples.push([startMs, rttMs, inflight, dropped]);
  }
}

function setup(limit = 20, options = {}) {
  const timers = new ManualTimers(1000);
  const algo = new SpyLimit(limit);
  const limiter = new Limiter(algo, { clock: timers, timers }, options);
  return { timers, algo, limiter };
}

/** The promise's state after pending callbacks have run. */
async function settled<T>(p: Promise<T>): Promise<'pending' | 'resolved' | 'shed'> {
  let state: 'pending' | 'resolved' | 'shed' = 'pending';
  p.then(
    () => (state = 'resolved'),
    (e: unknown) => (state = isSibylError(e, 'ERR_SHED') ? 'shed' : 'pending'),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return state;
}

function fill(
  limiter: Limiter,
  n: number,
  priority: 'critical' | 'default' | 'sheddable' = 'critical',
): Token[] {
  return Array.from({ length: n }, () => limiter.tryAcquire({ priority })!);
}

describe('Limiter', () => {
  it('gives each priority its share of the limit: critical all, default 90%, sheddable 75%', () => {
    const { limiter } = setup(20);
    expect(limiter.capacity('critical')).toBe(20);
    expect(limiter.capacity('default')).toBe(18);
    expect(limiter.capacity('sheddable')).toBe(15);
    expect(setup(1).limiter.capacity('sheddable')).toBe(1); // never zero
    // rounded, so that two slots keep an order: sheddable calls may hold one
    expect([2, 3, 4].map((l) => setup(l).limiter.capacity('sheddable'))).toEqual([1, 2, 3]);
    expect([2, 3, 4].map((l) => setup(l).limiter.capacity('default'))).toEqual([2, 3, 4]);
  });

  it('sheds sheddable first, then default, critical last', () => {
    const { limiter } = setup(20, { maxWaitMs: 0 });
    expect(fill(limiter, 15, 'sheddable').every(Boolean)).toBe(true);
    expect(limiter.tryAcquire({ priority: 'sheddable' })).toBeUndefined();
    expect(fill(limiter, 3, 'default').every(Boolean)).toBe(true);
    expect(limiter.tryAcquire({ priority: 'default' })).toBeUndefined();
    expect(fill(limiter, 2, 'critical').every(Boolean)).toBe(true);
    expect(limiter.tryAcquire({ priority: 'critical' })).toBeUndefined();
    expect(limiter.inflight).toBe(20);
  });

  it('answers at once, with no timer, when it can: a free slot or a certain shed', async () => {
    const { limiter, timers } = setup(2, { maxWaitMs: 0 });
    const t = limiter.acquire();
    expect(await settled(t)).toBe('resolved');
    limiter.acquire();
    const shed = limiter.acquire();
    expect(await settled(shed)).toBe('shed');
    const late = setup(1);
    late.limiter.tryAcquire();
    expect(await settled(late.limiter.acquire({ deadlineMs: 999 }))).toBe('shed'); // deadline passed
    expect(timers.size).toBe(0);
    expect(late.timers.size).toBe(0);
  });

  it('lets an over-limit call wait briefly, within its deadline', async () => {
    const { limiter, timers } = setup(1, { maxWaitMs: 5 });
    const held = limiter.tryAcquire()!;
    const waiting = limiter.acquire({ deadlineMs: 1003 });
    expect(await settled(waiting)).toBe('pending');
    timers.advance(2);
    held.release('success');
    expect(await settled(waiting)).toBe('resolved');

    const again = limiter.acquire({ deadlineMs: 1000 + 2 + 3 }); // 3 ms left: waits 3, not 5
    timers.advance(2);
    expect(await settled(again)).toBe('pending');
    timers.advance(1);
    expect(await settled(again)).toBe('shed');
    await expect(again).rejects.toMatchObject({ code: 'ERR_SHED' });
    expect(limiter.queued).toBe(0);
  });

  it('without maxWaitMs, waits a tenth of the typical RTT, within [5, 50] ms', async () => {
    const { limiter, timers } = setup(1);
    expect(limiter.waitMs).toBe(5); // nothing seen yet
    limiter.tryAcquire()!.release('success', 200);
    expect(limiter.waitMs).toBe(20);
    limiter.tryAcquire()!.release('dropped', 5); // a drop's time says nothing of the calls' time
    limiter.tryAcquire()!.release('ignore', 5);
    expect(limiter.waitMs).toBe(20);
    const held = limiter.tryAcquire()!;
    const waiting = limiter.acquire({ deadlineMs: 5000 });
    timers.advance(19);
    expect(await settled(waiting)).toBe('pending');
    timers.advance(1);
    expect(await settled(waiting)).toBe('shed');
    held.release('success', 100_000);
    expect(limiter.waitMs).toBe(50);
    const fast = setup(1).limiter;
    fast.tryAcquire()!.release('success', 2);
    expect(fast.waitMs).toBe(5);
  });

  it('hands freed slots to the highest priority first', async () => {
    const { limiter } = setup(10); // capacities 10 / 9 / 7 (a reserve of 2.5 rounds to 3)
    const held = fill(limiter, 10);
    const order: string[] = [];
    for (const priority of ['sheddable', 'default', 'critical'] as const) {
      void limiter.acquire({ priority, deadlineMs: 2000 }).then((t) => order.push(t.priority));
    }
    for (let i = 0; i < 7; i++) {
      held.pop()!.release('ignore');
      await settled(Promise.resolve());
    }
    // 9 in flight: critical; 8: default (capacity 9); 6: sheddable (capacity 7)
    expect(order).toEqual(['critical', 'default', 'sheddable']);
  });

  it('keeps the queue bounded, displacing the lowest priority for a higher one', async () => {
    const { limiter } = setup(1, { maxQueue: 2, maxWaitMs: 50 });
    limiter.tryAcquire();
    const s1 = limiter.acquire({ priority: 'sheddable' });
    const s2 = limiter.acquire({ priority: 'sheddable' });
    const d = limiter.acquire({ priority: 'default' });
    expect(await settled(s2)).toBe('shed'); // the newest of the lowest
    expect(await settled(s1)).toBe('pending');
    const c = limiter.acquire({ priority: 'critical' });
    expect(await settled(s1)).toBe('shed');
    const s3 = limiter.acquire({ priority: 'sheddable' });
    expect(await settled(s3)).toBe('shed'); // nothing lower to displace
    expect(await settled(d)).toBe('pending');
    expect(await settled(c)).toBe('pending');
    expect(limiter.queued).toBe(2);
  });

  it('feeds the Limit on release: rtt, inflight at admission, and whether it was dropped', () => {
    const { limiter, algo, timers } = setup(5);
    const a = limiter.tryAcquire()!;
    const b = limiter.tryAcquire()!;
    timers.advance(7);
    a.release('success');
    b.release('dropped', 3);
    const c = limiter.tryAcquire()!;
    c.release('ignore');
    c.release('success'); // only the first release counts
    expect(algo.samples).toEqual([
      [1000, 7, 1, false],
      [1000, 3, 2, true],
    ]);
    expect(limiter.inflight).toBe(0);
  });

  it('admits waiters as soon as the limit grows', async () => {
    const { limiter, algo } = setup(1);
    const held = limiter.tryAcquire()!;
    const w1 = limiter.acquire({ priority: 'critical', deadlineMs: 2000 });
    const w2 = limiter.acquire({ priority: 'critical', deadlineMs: 2000 });
    algo.limit = 3;
    held.release('success'); // 0 in flight, limit 3: both waiters fit
    expect(await settled(w1)).toBe('resolved');
    expect(await settled(w2)).toBe('resolved');
    expect(limiter.inflight).toBe(2);
  });

  it('works with a real algorithm', () => {
    const timers = new ManualTimers();
    const limiter = new Limiter(new FixedLimit({ initialLimit: 2 }), { clock: timers, timers });
    expect(limiter.limit).toBe(2);
    expect(limiter.tryAcquire()).toBeDefined();
  });

  it('refuses inconsistent reserves', () => {
    expect(() => setup(5, { reserve: { default: 0.5, sheddable: 0.2 } })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
  });
});
