import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  capacityRps,
  expandServers,
  loadScenario,
  meanLogUniform,
  offeredRps,
  parseScenario,
} from '../../../../src/tools/sim/scenario.js';

const DESIGN_EXAMPLE = {
  name: 'heterogeneous',
  seed: 1,
  durationS: 60,
  warmupS: 5,
  routers: 4,
  load: { utilization: 0.7 },
  deadlineMs: 1000,
  telemetry: { metricsIntervalS: 1, reportIntervalS: 1 },
  methods: [
    { name: '/demo.Catalog/Get', share: 0.8, costMs: 2, payloadBytes: [200, 2000] },
    { name: '/demo.Catalog/Search', share: 0.2, costMs: 20, payloadBytes: [1000, 50000], costPerKiBMs: 0.2 },
  ],
  servers: [
    { count: 6, speed: 1.0, concurrency: 4 },
    { count: 2, speed: 0.5, concurrency: 4 },
    { count: 1, speed: 1.0, concurrency: 4, antagonistCpu: 0.5 },
  ],
  events: [
    { server: 3, fromS: 15, toS: 45, slowdown: 10 },
    { server: 7, fromS: 20, toS: 40, errorRate: 0.5, errorLatencyMs: 1 },
    { server: 2, pauseEveryS: 10, pauseMs: 200 },
  ],
};

const bad = (patch: Record<string, unknown>) => () =>
  parseScenario({ ...DESIGN_EXAMPLE, ...patch }, 'x.json');

describe('scenario files', () => {
  it("reads the scenario format's example, expanding server groups in order", () => {
    const s = parseScenario(DESIGN_EXAMPLE);
    const servers = expandServers(s);
    expect(servers).toHaveLength(9);
    expect(servers[6]).toEqual({ index: 6, speed: 0.5, concurrency: 4, antagonistCpu: 0 });
    expect(servers[8]!.antagonistCpu).toBe(0.5);
    expect(s.events[2]).toMatchObject({ server: 2, fromS: 0, toS: 60, pauseEveryS: 10, pauseMs: 200 });
  });

  it('computes capacity from slots × speed (stretched by antagonists) over the mean cost', () => {
    const s = parseScenario(DESIGN_EXAMPLE);
    const slotSpeed = 6 * 4 + 2 * 4 * 0.5 + 4 * 0.75;
    const get = 2;
    const search = 20 + (0.2 * meanLogUniform(1000, 50000)) / 1024;
    expect(capacityRps(s)).toBeCloseTo((1000 * slotSpeed) / (0.8 * get + 0.2 * search), 6);
    expect(offeredRps(s, 10_000)).toBeCloseTo(0.7 * capacityRps(s), 6);
  });

  it('reads methodSpeed, perKiBFactor and event antagonists, and costs each server for the mix', () => {
    const s = parseScenario({
      ...DESIGN_EXAMPLE,
      servers: [
        { count: 2, concurrency: 4 },
        { count: 1, concurrency: 4, methodSpeed: { '/demo.Catalog/Search': 0.25 }, perKiBFactor: 3 },
      ],
      events: [{ server: 0, fromS: 10, toS: 20, antagonistCpu: 0.8 }],
    });
    expect(s.servers[1]).toMatchObject({ methodSpeed: { '/demo.Catalog/Search': 0.25 }, perKiBFactor: 3 });
    expect(s.events[0]).toMatchObject({ antagonistCpu: 0.8, fromS: 10, toS: 20 });
    const servers = expandServers(s);
    expect(servers[0]!.costs).toBeUndefined(); // a plain group computes its work as before
    expect(servers[2]!.costs).toEqual([
      { costMs: 2, perKiBMs: 0 },
      { costMs: 20 / 0.25, perKiBMs: (0.2 * 3) / 0.25 },
    ]);
    // capacity: each server's slots over its own mean cost for the 80/20 mix
    const kib = meanLogUniform(1000, 50000) / 1024;
    const plain = 0.8 * 2 + 0.2 * (20 + 0.2 * kib);
    const cold = 0.8 * 2 + 0.2 * ((20 + 0.6 * kib) / 0.25);
    expect(capacityRps(s)).toBeCloseTo((2 * 4000) / plain + 4000 / cold, 6);
  });

  it('ramps the load linearly between fromS and toS, then holds it', () => {
    const s = parseScenario({ ...DESIGN_EXAMPLE, load: { rps: 100, ramp: { to: 300, fromS: 10, toS: 20 } } });
    expect(offeredRps(s, 5_000)).toBe(100);
    expect(offeredRps(s, 15_000)).toBeCloseTo(200, 9);
    expect(offeredRps(s, 50_000)).toBe(300);
  });

  it.each([
    [{ durationS: 'long' }, /x\.json: durationS must be a number > 0/],
    [{ speed: 1 }, /x\.json: speed is not a known field/],
    [{ load: { utilization: 0.5, rps: 10 } }, /load must give exactly one of utilization and rps/],
    [{ load: {} }, /load must give exactly one/],
    [{ methods: [] }, /methods must not be empty/],
    [{ methods: [{ name: 'Get', costMs: 1 }] }, /methods\[0\]\.name must be a full gRPC method name/],
    [{ methods: [{ name: '/a.B/C', costMs: 1, payloadBytes: [10, 1] }] }, /payloadBytes must be \[lo, hi\]/],
    [
      { servers: [{ count: 2, speed: -1, concurrency: 4 }] },
      /servers\[0\]\.speed must be a number > 0, got -1/,
    ],
    [{ servers: [{ count: 2, concurrency: 1.5 }] }, /servers\[0\]\.concurrency must be an integer/],
    [{ events: [{ server: 9, slowdown: 2 }] }, /events\[0\]\.server must be an integer >= 0 and <= 8, got 9/],
    [{ events: [{ server: 1, pauseEveryS: 10 }] }, /events\[0\] must give pauseEveryS and pauseMs together/],
    [{ events: [{ server: 1 }] }, /events\[0\] must have an effect/],
    [{ events: [{ server: 1, fromS: 5, toS: 2, slowdown: 2 }] }, /events\[0\]\.toS must be after fromS/],
    [{ events: [{ server: 1, slowDown: 2 }] }, /events\[0\]\.slowDown is not a known field/],
    [{ warmupS: 60 }, /warmupS must be less than durationS/],
    [{ concurrency: { algorithm: 'Magic' } }, /concurrency\.algorithm must be one of/],
    [{ concurrency: { minLimit: 30, initialLimit: 20 } }, /minLimit \(30\) <= initialLimit \(20\)/],
    [
      { servers: [{ count: 9, concurrency: 4, methodSpeed: { '/demo.Catalog/Serch': 0.2 } }] },
      /servers\[0\]\.methodSpeed names "\/demo\.Catalog\/Serch", not a method of this scenario \(\/demo\.Catalog\/Get, \/demo\.Catalog\/Search\)/,
    ],
    [
      { servers: [{ count: 9, concurrency: 4, methodSpeed: { '/demo.Catalog/Search': 0 } }] },
      /servers\[0\]\.methodSpeed\.\/demo\.Catalog\/Search must be a number > 0 and <= 1000, got 0/,
    ],
    [
      { servers: [{ count: 9, concurrency: 4, methodSpeed: [0.5] }] },
      /servers\[0\]\.methodSpeed must be an object of method name → speed factor/,
    ],
    [
      { servers: [{ count: 9, concurrency: 4, perKiBFactor: -2 }] },
      /servers\[0\]\.perKiBFactor must be a number > 0 and <= 1000, got -2/,
    ],
    [
      { events: [{ server: 1, antagonistCpu: 1.5 }] },
      /events\[0\]\.antagonistCpu must be a number >= 0 and <= 1, got 1\.5/,
    ],
    [{ events: [{ server: 1, antagonistCpu: 'high' }] }, /events\[0\]\.antagonistCpu must be a number/],
  ])('refuses %j with a message naming the field', (patch, message) => {
    expect(bad(patch)).toThrow(message);
    expect(bad(patch)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });

  it('names the file when it cannot be read or is not JSON', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sim-'));
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{"name": ');
    await expect(loadScenario(broken)).rejects.toThrow(/broken\.json: not valid JSON/);
    await expect(loadScenario(path.join(dir, 'absent.json'))).rejects.toThrow(/absent\.json: cannot read/);
  });
});
