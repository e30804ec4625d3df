import { TrackedEndpoint } from '../../../src/balancer/endpoint.js';
import { Picker, type CallHandle, type Choosable, type PickResult } from '../../../src/balancer/picker.js';
import type { Balancer, CallOutcome, Endpoint, PickRequest } from '../../../src/balancer/types.js';
import { Status } from '../../../src/grpc/status.js';
import { FixedLimit, Limiter, type Priority } from '../../../src/limit/index.js';
import { ManualTimers } from '../../../src/util/timers.js';

// The Picker: pick → limit → breaker, and one handle per call doing its bookkeeping once. Each endpoint's
// limiter is consulted after the pick; a full endpoint is set aside, and only when all are full does a
// call wait briefly or get shed.

class Ep implements Choosable {
  readonly ep: TrackedEndpoint;
  constructor(
    address: string,
    readonly limiter: Limiter | undefined,
  ) {
    this.ep = new TrackedEndpoint(address);
  }
}

/** A balancer stand-in: prefers endpoints in the order of `preference`, and records what it was shown. */
class Ranked implements Balancer {
  readonly name = 'Ranked';
  readonly shown: string[][] = [];
  readonly ended: Array<[string, CallOutcome]> = [];
  readonly started: string[] = [];
  constructor(private readonly preference: string[]) {}
  pick(eps: readonly Endpoint[]): Endpoint {
    this.shown.push(eps.map((e) => e.address));
    const rank = (e: Endpoint) => this.preference.indexOf(e.address);
    return [...eps].sort((a, b) => rank(a) - rank(b))[0] as Endpoint;
  }
  onCallStarted(ep: Endpoint): void {
    this.started.push(`${ep.address}:${ep.inflight}`);
  }
  onCallEnded(ep: Endpoint, _r: PickRequest, o: CallOutcome): void {
    this.ended.push([ep.address, o]);
  }
}

const req: PickRequest = { method: '/x.Y/Z', payloadBytes: 10 };

function setup(
  limits: Array<number | undefined>,
  preference: string[],
  o: { refuse?: string[] } = {},
  lim = {},
) {
  const timers = new ManualTimers(1000);
  const eps = limits.map(
    (l, i) =>
      new Ep(
        `e${i}`,
        l === undefined
          ? undefined
          : new Limiter(new FixedLimit({ initialLimit: l }), { clock: timers, timers }, lim),
      ),
  );
  const balancer = new Ranked(preference);
  const gateEnded: Array<[string, number]> = [];
  const picker = new Picker<Ep>(balancer, {
    clock: timers,
    gate: {
      admit: (id) => !o.refuse?.includes(id),
      onCallEnded: (id, outcome) => gateEnded.push([id, outcome.code]),
    },
  });
  return { timers, eps, balancer, picker, gateEnded };
}

const picked = (r: PickResult<Ep>) => (r.type === 'complete' ? r.call.target.ep.address : r.type);
const callOf = (r: PickResult<Ep>): CallHandle<Ep> => {
  if (r.type !== 'complete') throw new Error(r.type);
  return r.call;
};

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('Picker: choosing an endpoint under per-endpoint limits', () => {
  it('takes the balancer’s choice while it has a slot, holding one slot of its limiter', () => {
    const { eps, picker } = setup([2, 2], ['e1', 'e0']);
    const c = callOf(picker.pickNow(eps, req));
    expect(c.target.ep.address).toBe('e1');
    expect(eps[1]?.limiter?.inflight).toBe(1);
    expect(eps[0]?.limiter?.inflight).toBe(0);
    c.start();
    c.end(Status.OK);
    expect(eps[1]?.limiter?.inflight).toBe(0);
  });

  it('sets aside an endpoint at its limit and asks the balancer again among the rest, without waiting', () => {
    const { eps, picker, balancer, timers } = setup([1, 1, 1], ['e0', 'e1', 'e2']);
    const got = [picker.pickNow(eps, req), picker.pickNow(eps, req), picker.pickNow(eps, req)];
    expect(got.map(picked)).toEqual(['e0', 'e1', 'e2']);
    expect(balancer.shown).toEqual([
      ['e0', 'e1', 'e2'],
      ['e0', 'e1', 'e2'],
      ['e1', 'e2'],
      ['e0', 'e1', 'e2'],
      ['e1', 'e2'],
      ['e2'], // every pick goes through the balancer, one candidate too
    ]);
    expect(timers.size).toBe(0);
    const full = picker.pickNow(eps, req);
    expect(full.type === 'queue' && full.full.map((e) => e.ep.address)).toEqual(['e0', 'e1', 'e2']);
    expect(eps.map((e) => e.ep.address)).toEqual(['e0', 'e1', 'e2']); // candidates untouched
  });

  it('an endpoint whose breaker refuses gives its slot back and is passed over', () => {
    const { eps, picker } = setup([1, 1], ['e0', 'e1'], { refuse: ['e0'] });
    expect(picked(picker.pickNow(eps, req))).toBe('e1');
    expect(eps[0]?.limiter?.inflight).toBe(0);
    expect(picked(picker.pickNow([eps[0] as Ep], req))).toBe('unavailable');
  });

  it('without limiters it is the balancer’s choice', () => {
    const { eps, picker } = setup([undefined, undefined], ['e1', 'e0']);
    expect(picked(picker.pickNow(eps, req))).toBe('e1');
  });

  it('when every endpoint is full, waits on the preferred one and gets the slot it frees', async () => {
    const { eps, picker, timers } = setup([1, 1], ['e1', 'e0']);
    const held = [callOf(picker.pickNow(eps, req)), callOf(picker.pickNow(eps, req))];
    const box: { got?: PickResult<Ep> } = {};
    void Promise.resolve(picker.pick(eps, req, 'default', Infinity)).then((r) => (box.got = r));
    await flush();
    expect(box).toEqual({});
    timers.advance(2);
    held[1]?.end(Status.CANCELLED); // e0 frees a slot (e1 was preferred, but waits are per endpoint)
    await flush();
    expect(box).toEqual({});
    held[0]?.end(Status.CANCELLED); // e1 frees one: the waiter on e1 takes it
    await flush();
    expect(box.got && picked(box.got)).toBe('e1');
  });

  it('sheds when no slot frees within the limiter’s wait, or at once with no time left', async () => {
    const { eps, picker, timers } = setup([1], ['e0'], {}, { maxWaitMs: 5 });
    picker.pickNow(eps, req);
    const waiting = picker.pick(eps, req, 'default', Infinity);
    timers.advance(5);
    const r = await waiting;
    expect(r.type === 'drop' && r.reason).toMatch(
      /every endpoint is at its concurrency limit; e0: .*waited 5ms/,
    );
    const late = await picker.pick(eps, req, 'default', timers.now());
    expect(late.type === 'drop' && late.reason).toMatch(/no time left/);
  });

  it('sheds sheddable calls first and lets critical ones through (the limiter’s reserves)', async () => {
    // limit 4: sheddable may hold 3 slots, default 4, critical 4.
    const { eps, picker, timers } = setup([4, 4], ['e0', 'e1'], {}, { maxWaitMs: 5 });
    const results: string[] = [];
    const calls: CallHandle<Ep>[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await Promise.race([
        Promise.resolve(picker.pick(eps, req, 'sheddable', Infinity)),
        flush().then(() => 'waiting' as const),
      ]);
      if (r === 'waiting') {
        results.push('waiting');
        timers.advance(5);
        continue;
      }
      if (r.type === 'complete') calls.push(r.call);
      results.push(picked(r));
    }
    expect(results).toEqual(['e0', 'e0', 'e0', 'e1', 'e1', 'e1', 'waiting', 'waiting']);
    const critical = (p: Priority = 'critical') => picked(picker.pickNow(eps, req, p));
    expect([critical(), critical()]).toEqual(['e0', 'e1']);
    expect(critical()).toBe('queue');
    for (const c of calls) c.end(Status.CANCELLED);
  });

  it('a waiting sheddable call is displaced by a critical one when the queue is full', async () => {
    const { eps, picker, timers } = setup([1], ['e0'], {}, { maxWaitMs: 5, maxQueue: 1 });
    picker.pickNow(eps, req, 'critical');
    const sheddable = picker.pick(eps, req, 'sheddable', Infinity);
    const critical = picker.pick(eps, req, 'critical', Infinity);
    const s = await sheddable;
    expect(s.type === 'drop' && s.reason).toMatch(/displaced by a higher-priority call/);
    timers.advance(5);
    const c = await critical;
    expect(c.type === 'drop' && c.reason).toMatch(/critical call shed/);
  });
});

describe('CallHandle: one call’s bookkeeping, once', () => {
  it('start counts the call on its endpoint, then tells the balancer; end undoes it and tells everyone once', () => {
    const { eps, balancer, timers, gateEnded } = setup([2, 2], ['e0', 'e1']);
    const seen: string[] = [];
    const observed = new Picker<Ep>(balancer, {
      clock: timers,
      gate: { admit: () => true, onCallEnded: (id, o) => gateEnded.push([id, o.code]) },
      observer: {
        started: (call) => (
          seen.push(`started ${call.endpoint.address} inflight ${call.endpoint.inflight}`),
          'ctx'
        ),
        ended: (call, context, o) =>
          seen.push(`ended ${call.endpoint.address} ${String(context)} ${o.code} ${o.latencyMs}`),
      },
    });
    const c = callOf(observed.pickNow(eps, req));
    c.start();
    c.start(); // only the first start counts
    expect(eps[0]?.ep.inflight).toBe(1);
    expect(eps[0]?.ep.oldestInflightStartMs).toBe(1000);
    expect(balancer.started).toEqual(['e0:1']);
    timers.advance(7);
    const load = { cpu: 0.5, atMs: timers.now() };
    expect(c.end(Status.UNAVAILABLE, load)).toMatchObject({
      ok: false,
      code: 14,
      latencyMs: 7,
      startedAtMs: 1000,
    });
    expect(c.end(Status.OK)).toBeUndefined();
    expect(eps[0]?.ep.inflight).toBe(0);
    expect(eps[0]?.ep.oldestInflightStartMs).toBeUndefined();
    expect(eps[0]?.ep.load).toBe(load);
    expect(eps[0]?.limiter?.inflight).toBe(0);
    expect(balancer.ended.map(([a, o]) => `${a} ${o.code}`)).toEqual(['e0 14']);
    expect(gateEnded).toEqual([['e0', 14]]);
    expect(seen).toEqual(['started e0 inflight 0', 'ended e0 ctx 14 7']);
  });

  it('a handle ended before it started gives its slot and breaker trial back, and tells no balancer', () => {
    const { eps, picker, balancer, gateEnded } = setup([1], ['e0']);
    const c = callOf(picker.pickNow(eps, req));
    expect(eps[0]?.limiter?.inflight).toBe(1);
    expect(c.end(Status.CANCELLED)).toBeUndefined();
    expect(eps[0]?.limiter?.inflight).toBe(0);
    expect(eps[0]?.ep.inflight).toBe(0);
    expect(balancer.ended).toEqual([]);
    expect(gateEnded).toEqual([['e0', Status.CANCELLED]]);
    c.start(); // too late: nothing is counted
    expect(eps[0]?.ep.inflight).toBe(0);
  });

  it('the oldest open call is tracked as calls end in any order', () => {
    const { eps, picker, timers } = setup([undefined], ['e0']);
    const calls: CallHandle<Ep>[] = [];
    for (let i = 0; i < 3; i++) {
      const c = callOf(picker.pickNow(eps, req));
      c.start();
      calls.push(c);
      timers.advance(10);
    }
    const ep = eps[0]!.ep;
    expect([ep.inflight, ep.oldestInflightStartMs]).toEqual([3, 1000]);
    calls[1]!.end(Status.OK);
    expect([ep.inflight, ep.oldestInflightStartMs]).toEqual([2, 1000]);
    calls[0]!.end(Status.OK);
    expect([ep.inflight, ep.oldestInflightStartMs]).toEqual([1, 1020]);
    calls[2]!.end(Status.OK);
    expect([ep.inflight, ep.oldestInflightStartMs]).toEqual([0, undefined]);
  });

  it('tells the balancer that picked the call, even after the pool has a new one', () => {
    const { eps, balancer, timers } = setup([undefined], ['e0']);
    const first = new Picker<Ep>(balancer, { clock: timers });
    const c = callOf(first.pickNow(eps, req));
    c.start();
    const other = new Ranked(['e0']);
    void new Picker<Ep>(other, { clock: timers });
    c.end(Status.OK);
    expect(balancer.ended).toHaveLength(1);
    expect(other.ended).toHaveLength(0);
  });
});
