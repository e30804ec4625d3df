import { TrackedEndpoint } from '../../../src/balancer/endpoint.js';
import { Picker, type CallHandle, type Choosable, type PickResult } from '../../../src/balancer/picker.js';
import type { Balancer, CallOutcome, Endpoint, PickRequest } from '../../../src/balancer/types.js';
import { Status } from '../../../src/grpc/status.js';
import { FixedLimit, Limiter, type Priority } from '../../../src/limit/index.js';
import { ManualTimers } from '../../../src/util/timers.js';
import { BreakerGate } from '../../../src/router/gate.js';
import { pino } from 'pino';

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

/** Endpoints e0, e1, … each with a fixed concurrency limit of `limits[i]` (none when undefined). */
function endpoints(limits: Array<number | undefined>, timers: ManualTimers, lim = {}): Ep[] {
  return limits.map(
    (l, i) =>
      new Ep(
        `e${i}`,
        l === undefined
          ? undefined
          : new Limiter(new FixedLimit({ initialLimit: l }), { clock: timers, timers }, lim),
      ),
  );
}

function setup(
  limits: Array<number | undefined>,
  preference: string[],
  o: { refuse?: string[] } = {},
  lim = {},
) {
  const timers = new ManualTimers(1000);
  const eps = endpoints(limits, timers, lim);
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

describe('Picker.probe: a copy of a call the balancer wants measured elsewhere', () => {
  /** Ranked, and names `target` for a probe whatever the pick. */
  class Prober extends Ranked {
    constructor(
      preference: string[],
      private readonly target: string,
    ) {
      super(preference);
    }
    probeTarget(eps: readonly Endpoint[]): Endpoint | undefined {
      return eps.find((e) => e.address === this.target);
    }
  }

  function probing(limits: Array<number | undefined>, target = 'e1', spec = {}) {
    const timers = new ManualTimers(1000);
    const eps = endpoints(limits, timers);
    const gate = new BreakerGate(
      { failureThreshold: 2, recoveryTimeoutMs: 1000, halfOpenMaxCalls: 1, maxEjectionPercent: 100, ...spec },
      { clock: timers, log: pino({ level: 'silent' }), pool: 'p' },
    );
    gate.sync(eps.map((e) => e.ep.id));
    const balancer = new Prober(['e0', 'e1', 'e2'], target);
    const seen: string[] = [];
    const picker = new Picker<Ep>(balancer, {
      clock: timers,
      gate,
      observer: {
        started: (call) => seen.push(`started ${call.endpoint.address} probe ${call.probe}`),
        ended: (call, _ctx, o) => seen.push(`ended ${call.endpoint.address} probe ${call.probe} ${o.code}`),
      },
    });
    return { timers, eps, gate, balancer, picker, seen };
  }

  it('names the balancer’s target, never the picked endpoint, and does the bookkeeping once', () => {
    const { eps, picker, balancer, timers, seen } = probing([2, 2]);
    const call = callOf(picker.pickNow(eps, req));
    call.start();
    expect(call.probe).toBe(false);
    // the balancer naming the picked endpoint itself gets no probe
    expect(
      new Picker<Ep>(new Prober(['e0'], 'e0'), { clock: timers }).probe(eps, req, eps[0]!),
    ).toBeUndefined();
    const probe = picker.probe(eps, req, call.target) as CallHandle<Ep>;
    expect(probe.probe).toBe(true);
    expect(probe.target).toBe(eps[1]);
    expect(eps[1]?.limiter?.inflight).toBe(1);
    probe.start();
    expect(eps[1]?.ep.inflight).toBe(1);
    timers.advance(30);
    expect(probe.end(Status.OK)).toMatchObject({ ok: true, latencyMs: 30 });
    expect(probe.end(Status.OK)).toBeUndefined();
    call.end(Status.OK);
    expect(eps[1]?.ep.inflight).toBe(0);
    expect(eps[1]?.limiter?.inflight).toBe(0);
    expect(balancer.started).toEqual(['e0:1', 'e1:1']);
    expect(balancer.ended.map(([a, o]) => `${a} ${o.latencyMs}`)).toEqual(['e1 30', 'e0 30']);
    expect(seen).toEqual([
      'started e0 probe false',
      'started e1 probe true',
      'ended e1 probe true 0',
      'ended e0 probe false 0',
    ]);
  });

  it('takes a limiter slot only if one is free at sheddable priority, and never waits', () => {
    // limit 4: sheddable calls may hold 3 slots
    const { eps, picker } = probing([4, 4]);
    const held = [0, 1, 2].map(() => callOf(picker.pickNow([eps[1]!], req, 'default')));
    expect(picker.probe(eps, req, eps[0]!)).toBeUndefined();
    expect(eps[1]?.limiter?.inflight).toBe(3);
    expect(picker.pickNow([eps[1]!], req, 'default').type).toBe('complete'); // a client's call still fits
    for (const c of held) c.end(Status.CANCELLED);
  });

  it('spends the allowance only on a probe that goes, and gives the slot back when it is spent', () => {
    const { eps, picker } = probing([4, 4]);
    let asked = 0;
    const spent = { tryWithdraw: () => (asked++, false) };
    expect(picker.probe(eps, req, eps[0]!, spent)).toBeUndefined();
    expect(asked).toBe(1);
    expect(eps[1]?.limiter?.inflight).toBe(0);
    expect(picker.probe([eps[0]!], req, eps[0]!, spent)).toBeUndefined(); // nothing else to measure
    expect(asked).toBe(1);
  });

  it('goes only to a Closed breaker, never takes a half-open trial, and its failures count', () => {
    const { eps, picker, gate, timers } = probing([undefined, undefined]);
    const fail = () => {
      const p = picker.probe(eps, req, eps[0]!) as CallHandle<Ep>;
      p.start();
      p.end(Status.UNAVAILABLE);
    };
    fail();
    fail(); // failureThreshold 2: probes' failures open the breaker as calls' do
    expect(gate.breakers.state('e1')).toBe('Open');
    expect(picker.probe(eps, req, eps[0]!)).toBeUndefined();
    timers.advance(1000);
    expect(gate.allows('e1')).toBe(true); // HalfOpen, its one trial slot free
    expect(picker.probe(eps, req, eps[0]!)).toBeUndefined();
    expect(gate.admit('e1')).toBe(true); // the trial is still there for a client's call
  });

  it('a probe ended before it started gives its slot back and tells no one', () => {
    const { eps, picker, balancer, seen } = probing([2, 2]);
    const p = picker.probe(eps, req, eps[0]!) as CallHandle<Ep>;
    expect(p.end(Status.CANCELLED)).toBeUndefined();
    expect(eps[1]?.limiter?.inflight).toBe(0);
    expect([balancer.started, balancer.ended, seen]).toEqual([[], [], []]);
  });

  it('a balancer without probeTarget names nothing', () => {
    const { eps, picker } = setup([undefined, undefined], ['e0', 'e1']);
    expect(picker.probe(eps, req, eps[0]!)).toBeUndefined();
  });
});
