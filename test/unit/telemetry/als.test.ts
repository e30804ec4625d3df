import { AccessLogAggregator } from '../../../src/telemetry/als.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../../../src/telemetry/histogram.js';
import { seededRandom } from '../../../src/util/clock.js';

const call = (address: string, code: number, latencyMs: number, requestBytes = 100) => ({
  pool: 'ns/p',
  address,
  code,
  latencyMs,
  requestBytes,
});

describe('AccessLogAggregator', () => {
  it("counts an interval's attempts per endpoint as a router's LoadReport does", () => {
    const a = new AccessLogAggregator(seededRandom(1));
    a.record(call('a:1', 0, 4));
    a.record(call('a:1', 14, 2));
    a.record(call('a:1', 5, 3)); // NOT_FOUND is an answer, not the server's fault
    a.record(call('a:1', 1, 45)); // a hedge that lost: counted, not a failure
    a.record(call('b:1', 4, 900));
    const r = a.drain('envoy/e1', 5000);
    expect(r?.report).toMatchObject({ routerId: 'envoy/e1', intervalMs: 5000, samples: [], caches: [] });
    const [ea, eb] = r?.report.endpoints ?? [];
    expect(ea).toMatchObject({
      pool: 'ns/p',
      address: 'a:1',
      calls: 4,
      errors: { '14': 1 },
      inflight: 0,
      breaker: '',
    });
    expect(ea?.latencyBoundsMs).toEqual(LATENCY_BOUNDS_MS);
    expect(ea?.latencyCounts[bucketOf(4)]).toBe(1);
    expect(ea?.latencyCounts[bucketOf(45)]).toBe(1);
    expect(ea?.latencyCounts.reduce((x, y) => x + y, 0)).toBe(4);
    expect(eb).toMatchObject({ address: 'b:1', calls: 1, errors: { '4': 1 } });
    expect(r?.observed).toHaveLength(5);
    expect(r?.observed.find((o) => o.address === 'b:1')).toEqual({
      pool: 'ns/p',
      address: 'b:1',
      payloadBytes: 100,
      latencyMs: 900,
      failed: true,
    });
  });

  it('counts latencies per pool and method, of the attempts an upstream answered only', () => {
    const a = new AccessLogAggregator(seededRandom(1));
    const get = '/a.A/Get';
    a.record({ ...call('a:1', 0, 4), method: get });
    a.record({ ...call('b:1', 14, 2), method: get });
    a.record({ ...call('a:1', 1, 100), method: get }); // cut by a per-try timeout, or a hedge that lost
    a.record({ ...call('a:1', 0, 30), method: '/a.A/Put' });
    a.record(call('a:1', 0, 7)); // no path logged
    const r = a.drain('envoy/e1', 1000);
    const m = r?.methods.get('ns/p');
    expect([...(m?.keys() ?? [])]).toEqual([get, '/a.A/Put']);
    expect(m?.get(get)?.calls).toBe(2);
    expect(m?.get(get)?.counts[bucketOf(4)]).toBe(1);
    expect(m?.get(get)?.counts[bucketOf(2)]).toBe(1);
    a.record(call('a:1', 0, 1));
    expect(a.drain('envoy/e1', 1000)?.methods.size).toBe(0);
  });

  it('starts a new interval after drain, and says nothing for an interval without calls', () => {
    const a = new AccessLogAggregator(seededRandom(1));
    a.record(call('a:1', 0, 1));
    expect(a.drain('envoy/e1', 1000)?.report.endpoints).toHaveLength(1);
    expect(a.drain('envoy/e1', 1000)).toBeUndefined();
    a.record(call('b:1', 0, 1));
    expect(a.drain('envoy/e1', 1000)?.report.endpoints.map((e) => e.address)).toEqual(['b:1']);
  });

  it('keeps a bounded uniform sample of the calls', () => {
    const a = new AccessLogAggregator(seededRandom(7), 100);
    for (let i = 0; i < 10_000; i++) a.record(call('a:1', 0, i % 2 ? 1 : 100, i));
    const r = a.drain('envoy/e1', 1000);
    expect(r?.report.endpoints[0]?.calls).toBe(10_000);
    expect(r?.observed).toHaveLength(100);
    // uniform over the interval: kept calls come from all of it, not only its start
    const late = r?.observed.filter((o) => o.payloadBytes >= 5000).length ?? 0;
    expect(late).toBeGreaterThan(30);
    expect(late).toBeLessThan(70);
  });
});
