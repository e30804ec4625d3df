import { Status } from '../../../src/grpc/status.js';
import { LoadCollector, methodCounted } from '../../../src/router/load-collector.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../../../src/telemetry/histogram.js';
import { MAX_METHODS_PER_POOL } from '../../../src/telemetry/method-latency.js';
import { seededRandom } from '../../../src/util/clock.js';

const GET = '/a.A/Get';

describe("a router's load report per method", () => {
  it("holds each method's tries in a pool over all its endpoints, in the shared buckets, then starts afresh", () => {
    const c = new LoadCollector(seededRandom(1));
    c.record('ns/p', 'a:1', GET, Status.OK, 4, false);
    c.record('ns/p', 'b:1', GET, Status.UNAVAILABLE, 40, true);
    c.record('ns/p', 'b:1', '/a.A/Put', Status.OK, 4, false);
    c.record('ns/q', 'c:1', GET, Status.OK, 4, false);
    c.record('ns/p', 'a:1', undefined, Status.OK, 900, false);
    const { methods } = c.drain([]);
    const get = methods.find((m) => m.pool === 'ns/p' && m.method === GET);
    expect(get).toMatchObject({ calls: 2, latencyBoundsMs: LATENCY_BOUNDS_MS });
    expect(get?.latencyCounts[bucketOf(4)]).toBe(1);
    expect(get?.latencyCounts[bucketOf(40)]).toBe(1);
    expect(get?.latencyCounts.reduce((a, b) => a + b, 0)).toBe(2);
    expect(methods.map((m) => `${m.pool} ${m.method} ${m.calls}`).sort()).toEqual([
      'ns/p /a.A/Get 2',
      'ns/p /a.A/Put 1',
      'ns/q /a.A/Get 1',
    ]);
    expect(c.drain([]).methods).toEqual([]);
  });

  it("counts clients' tries the endpoint answered: not probes, lost hedges or tries past a deadline", () => {
    expect(methodCounted(Status.OK, false)).toBe(true);
    expect(methodCounted(Status.UNAVAILABLE, false)).toBe(true);
    expect(methodCounted(Status.OK, true)).toBe(false);
    expect(methodCounted(Status.CANCELLED, false)).toBe(false);
    expect(methodCounted(Status.DEADLINE_EXCEEDED, false)).toBe(false);
  });

  it('keeps at most MAX_METHODS_PER_POOL methods of a pool per interval (the first seen): paths come from clients', () => {
    const c = new LoadCollector(seededRandom(1));
    for (let i = 0; i <= MAX_METHODS_PER_POOL; i++)
      c.record('ns/p', 'a:1', `/a.A/M${i}`, Status.OK, 4, false);
    c.record('ns/p', 'a:1', '/a.A/M0', Status.OK, 4, false);
    const { methods } = c.drain([]);
    expect(methods).toHaveLength(MAX_METHODS_PER_POOL);
    expect(methods.find((m) => m.method === '/a.A/M0')?.calls).toBe(2);
    expect(methods.some((m) => m.method === `/a.A/M${MAX_METHODS_PER_POOL}`)).toBe(false);
  });
});
