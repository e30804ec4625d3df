import type { Endpoint } from '../../../../src/balancer/index.js';
import { ManualClock, seededRandom } from '../../../../src/util/clock.js';
import { EnvoyLeastRequest } from '../../../../src/tools/sim/envoy-least-request.js';
import { OutlierDetection } from '../../../../src/tools/sim/outlier-detection.js';

const spec = { failureThreshold: 3, recoveryTimeoutMs: 1000, halfOpenMaxCalls: 1, maxEjectionPercent: 50 };
const req = { method: '/t.S/M', payloadBytes: 0 };
const failed = { ok: false, code: 14, latencyMs: 1, startedAtMs: 0 };

describe('OutlierDetection (Envoy consecutive_5xx as sibyl programs it)', () => {
  it('ejects at the threshold of consecutive failures, for base time × times ejected', () => {
    const clock = new ManualClock(0);
    const o = new OutlierDetection(spec, clock);
    o.onResult('a', false, 4);
    o.onResult('a', false, 4);
    o.onResult('a', true, 4); // a success breaks the run
    o.onResult('a', false, 4);
    o.onResult('a', false, 4);
    expect(o.available('a')).toBe(true);
    o.onResult('a', false, 4);
    expect(o.available('a')).toBe(false);
    clock.advance(1000);
    expect(o.available('a')).toBe(true);
    for (let i = 0; i < 3; i++) o.onResult('a', false, 4);
    clock.advance(1999);
    expect(o.available('a')).toBe(false); // second ejection: 2 × base
    clock.advance(1);
    expect(o.available('a')).toBe(true);
  });

  it('ejects no more than max_ejection_percent of the cluster', () => {
    const o = new OutlierDetection(spec, new ManualClock(0));
    for (const id of ['a', 'b', 'c']) for (let i = 0; i < 3; i++) o.onResult(id, false, 4);
    expect(['a', 'b', 'c'].map((id) => o.available(id))).toEqual([false, false, true]);
  });
});

describe('EnvoyLeastRequest with outlier detection', () => {
  it('sends nothing to a host that failed five times in a row (the breaker default) until its ejection ends', () => {
    const clock = new ManualClock(0);
    const b = new EnvoyLeastRequest({ clock, random: seededRandom(3) });
    const eps: Endpoint[] = ['x', 'y', 'z'].map((id) => ({ id, address: id, inflight: 0 }));
    const sink = eps[0] as Endpoint;
    b.pick(eps); // calls are picked before they end: the cluster's size is known
    for (let i = 0; i < 5; i++) b.onCallEnded(sink, req, failed);
    for (let i = 0; i < 200; i++) expect(b.pick(eps)).not.toBe(sink);
    clock.advance(30_000); // base_ejection_time: the breaker's recoveryTimeout default
    const picked = new Set(Array.from({ length: 200 }, () => b.pick(eps)));
    expect(picked.has(sink)).toBe(true);
  });
});
