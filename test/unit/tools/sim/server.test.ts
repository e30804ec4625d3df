import { SimCall } from '../../../../src/tools/sim/call.js';
import { EventQueue } from '../../../../src/tools/sim/event-queue.js';
import { parseScenario, expandServers } from '../../../../src/tools/sim/scenario.js';
import { EV_COMPLETE, EV_RATE, SimServer } from '../../../../src/tools/sim/server.js';
import { Telemetry } from '../../../../src/tools/sim/telemetry.js';

/** One server of a scenario, driven by hand: calls placed at given times, events run in order. */
function bench(
  server: Record<string, unknown>,
  events: unknown[] = [],
  methods: unknown[] = [{ name: '/t.S/Get', costMs: 1 }],
) {
  const s = parseScenario({
    name: 't',
    durationS: 100,
    load: { rps: 1 },
    methods,
    servers: [server],
    events,
  });
  const q = new EventQueue<SimCall>(64);
  const dropped: SimCall[] = [];
  const done = new Map<SimCall, number>();
  const srv = new SimServer(expandServers(s)[0]!, s.events, q, (c) => dropped.push(c));
  const first = srv.nextChangeAfter(0);
  if (first < Infinity) q.push(first, EV_RATE, undefined, 0);
  let serial = 0;
  const call = (work: number, deadlineAt = Infinity, methodIndex = 0, payloadBytes = 0) => {
    const c = new SimCall();
    c.serial = ++serial;
    c.baseWorkMs = work;
    c.methodIndex = methodIndex;
    c.payloadBytes = payloadBytes;
    c.noise = 1;
    c.failU = 0.5;
    c.deadlineAt = deadlineAt;
    return c;
  };
  const runUntil = (t: number) => {
    while (q.peekTime() <= t) {
      q.pop();
      if (q.kind === EV_RATE) {
        srv.updateRate(q.time);
        const next = srv.nextChangeAfter(q.time);
        if (next < Infinity) q.push(next, EV_RATE, undefined, 0);
      } else if (q.kind === EV_COMPLETE) {
        const c = q.obj as SimCall;
        if (c.gen !== q.arg || c.serverDone) continue;
        srv.finish(c, q.time);
        done.set(c, q.time);
      }
    }
  };
  const at = (t: number, c: SimCall) => {
    runUntil(t);
    return srv.arrive(c, t);
  };
  return { srv, q, call, at, runUntil, done, dropped };
}

describe('simulated server', () => {
  it('stops a cancelled running call and gives its slot to the next waiter', () => {
    const b = bench({ count: 1, concurrency: 1 });
    const [long, next] = [b.call(100), b.call(10)];
    b.at(0, long);
    b.at(1, next); // queued behind `long`
    b.runUntil(20);
    b.srv.cancel(long, 20);
    b.runUntil(1000);
    expect(b.done.has(long)).toBe(false); // its completion is void
    expect(long.serverDone).toBe(true);
    expect(b.done.get(next)).toBeCloseTo(30, 9);
    b.srv.cancel(next, 1000); // no longer running: nothing happens
    expect(b.srv.nRunning).toBe(0);
  });

  it('runs a call for its work over speed', () => {
    const b = bench({ count: 1, speed: 0.5, concurrency: 1 });
    const c = b.call(10);
    expect(b.at(0, c)).toBe(-1);
    b.runUntil(1000);
    expect(b.done.get(c)).toBeCloseTo(20, 9);
  });

  it('halts during a pause: a call running when it starts finishes pauseMs later', () => {
    const b = bench({ count: 1, concurrency: 1 }, [{ server: 0, fromS: 1, pauseEveryS: 10, pauseMs: 200 }]);
    const c = b.call(50);
    b.at(980, c); // 20 ms done by the pause at 1000, 30 left after it ends at 1200
    b.runUntil(5000);
    expect(b.done.get(c)).toBeCloseTo(1230, 9);
    // a call arriving during the pause waits for it to end
    const d = b.call(10);
    b.at(11_050, d);
    b.runUntil(20_000);
    expect(b.done.get(d)).toBeCloseTo(11_210, 9);
  });

  it('stretches work by an active slowdown, including the rest of a call already running', () => {
    const b = bench({ count: 1, concurrency: 1 }, [{ server: 0, fromS: 1, toS: 2, slowdown: 4 }]);
    const c = b.call(100);
    b.at(950, c); // 50 done at full speed, 50 at a quarter speed = 200 ms
    b.runUntil(5000);
    expect(b.done.get(c)).toBeCloseTo(1200, 9);
    const d = b.call(100);
    b.at(3000, d); // after the window: full speed again
    b.runUntil(5000);
    expect(b.done.get(d)).toBeCloseTo(3100, 9);
  });

  it('pins the latency of calls started in a latencyMs window', () => {
    const b = bench({ count: 1, concurrency: 8 }, [{ server: 0, fromS: 1, toS: 2, latencyMs: 2000 }]);
    const [early, pinned] = [b.call(5), b.call(5)];
    b.at(500, early);
    b.at(1500, pinned);
    b.runUntil(10_000);
    expect(b.done.get(early)).toBeCloseTo(505, 9);
    expect(b.done.get(pinned)).toBeCloseTo(3500, 9);
  });

  it('queues beyond its slots and drops a queued call whose deadline passed before its turn', () => {
    const b = bench({ count: 1, concurrency: 1 });
    const [a, late, ok] = [b.call(100), b.call(10, 50), b.call(10, 1000)];
    b.at(0, a);
    b.at(1, late);
    b.at(2, ok);
    expect(b.srv.held).toBe(3);
    b.runUntil(1000);
    expect(b.dropped).toEqual([late]);
    expect(late.serverDone).toBe(true);
    expect(b.done.has(late)).toBe(false);
    expect(b.done.get(ok)).toBeCloseTo(110, 9);
  });

  it('fails calls fast in an error window, holding no slot', () => {
    const b = bench({ count: 1, concurrency: 1 }, [
      { server: 0, fromS: 1, toS: 2, errorRate: 0.6, errorLatencyMs: 3 },
    ]);
    const failing = b.call(10);
    failing.failU = 0.59;
    expect(b.at(1000, failing)).toBe(3);
    expect(b.srv.nRunning).toBe(0);
    const lucky = b.call(10);
    lucky.failU = 0.61;
    expect(b.at(1001, lucky)).toBe(-1);
    expect(b.srv.nRunning).toBe(1);
    expect(b.srv.errorRateAt(2500)).toBe(0);
  });

  it("reports CPU as its own slot use plus a neighbour's load", () => {
    const b = bench({ count: 1, concurrency: 2, antagonistCpu: 0.5 });
    const t = new Telemetry([b.srv]);
    t.scrape(1000);
    expect(t.view.cpu[0]).toBeCloseTo(0.5, 9); // idle: the antagonist alone
    b.at(1000, b.call(10_000)); // one of two slots busy for the next interval
    b.runUntil(2000);
    t.scrape(2000);
    expect(t.view.cpu[0]).toBeCloseTo(0.5 + 0.5, 9);
    expect(t.view.queueLength[0]).toBe(1);
    expect(t.view.atMs).toBe(2000);
  });

  it('runs at speed × (1 − antagonistCpu / 2)', () => {
    const b = bench({ count: 1, concurrency: 1, antagonistCpu: 0.5 });
    const c = b.call(30);
    b.at(0, c);
    b.runUntil(1000);
    expect(b.done.get(c)).toBeCloseTo(40, 9);
  });

  it("costs each method by its group's methodSpeed, and the per-KiB part by its perKiBFactor", () => {
    const methods = [
      { name: '/t.S/Get', costMs: 10 },
      { name: '/t.S/Search', costMs: 20, costPerKiBMs: 1, payloadBytes: [1024, 8192] },
    ];
    const odd = { count: 1, concurrency: 1, methodSpeed: { '/t.S/Search': 0.5 }, perKiBFactor: 2 };
    const b = bench(odd, [], methods);
    // the engine's own work for a call (baseWorkMs) is what a plain server runs; this one costs its own
    const get = b.call(10, Infinity, 0, 0);
    const search = b.call(22, Infinity, 1, 2048);
    b.at(0, get);
    b.at(0, search); // queued behind Get, carrying this server's work for it
    expect(b.srv.queuedWork).toBeCloseTo((20 + 1 * 2 * 2) / 0.5, 9);
    b.runUntil(1000);
    expect(b.done.get(get)).toBeCloseTo(10, 9);
    expect(b.done.get(search)).toBeCloseTo(10 + 48, 9);
    expect(b.srv.queuedWork).toBeCloseTo(0, 9);

    const plain = bench({ count: 1, concurrency: 1 }, [], methods);
    const c = plain.call(22, Infinity, 1, 2048);
    plain.at(0, c);
    plain.runUntil(1000);
    expect(plain.done.get(c)).toBeCloseTo(22, 9);
  });

  it("runs at the antagonist event's speed for its window only, stretching a call across it", () => {
    const b = bench({ count: 1, concurrency: 4 }, [{ server: 0, fromS: 1, toS: 2, antagonistCpu: 1 }]);
    const [before, across, after] = [b.call(100), b.call(100), b.call(10)];
    b.at(950, before); // 50 at full speed, then 50 at half speed: 100 ms
    b.at(1900, across); // 100 ms at half speed gets 50 done by 2000, the rest at full speed
    b.at(2050, after);
    b.runUntil(10_000);
    expect(b.done.get(before)).toBeCloseTo(1100, 9);
    expect(b.done.get(across)).toBeCloseTo(2050, 9);
    expect(b.done.get(after)).toBeCloseTo(2060, 9);
    expect(b.srv.antagonistAt(1500)).toBe(1);
    expect(b.srv.antagonistAt(2000)).toBe(0);
  });

  it("shows an event's antagonist in the CPU telemetry, averaged over the interval", () => {
    const events = [{ server: 0, fromS: 1, toS: 2, antagonistCpu: 0.9 }];
    const b = bench({ count: 1, concurrency: 2, antagonistCpu: 0.3 }, events);
    const t = new Telemetry([b.srv]);
    const cpuAt = (ms: number) => {
      b.runUntil(ms);
      t.scrape(ms);
      return t.view.cpu[0];
    };
    expect(cpuAt(1000)).toBeCloseTo(0.3, 9); // the group's standing antagonist
    expect(cpuAt(1500)).toBeCloseTo(0.9, 9); // the event's, replacing it
    expect(cpuAt(2500)).toBeCloseTo((0.9 + 0.3) / 2, 9); // half the interval each
    expect(cpuAt(3500)).toBeCloseTo(0.3, 9);
  });
});
