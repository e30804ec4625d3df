import {
  MAX_DEADLINES,
  methodDeadlines,
  perTryTimeoutMs,
  type MethodDeadline,
} from '../../../src/operator/deadlines.js';
import { emptyCounts } from '../../../src/telemetry/call-counts.js';
import { bucketOf } from '../../../src/telemetry/histogram.js';
import { MAX_METHODS_PER_POOL, MethodLatencies } from '../../../src/telemetry/method-latency.js';

const spec = { multiplier: 2, floorMs: 10 };
const m = (method: string, calls: number, p99Ms?: number, p50Ms?: number) => ({
  method,
  calls,
  ...(p99Ms !== undefined ? { p99Ms } : {}),
  ...(p50Ms !== undefined ? { p50Ms } : {}),
});
const noModel = () => undefined;

describe('per-try deadlines per method', () => {
  it('clamp(multiplier × p99, floor, ceiling) to two figures, whole ms', () => {
    expect(perTryTimeoutMs(spec, 23.4)).toBe(47);
    expect(perTryTimeoutMs(spec, 123.4)).toBe(250);
    expect(perTryTimeoutMs(spec, 2)).toBe(10);
    expect(perTryTimeoutMs({ ...spec, ceilingMs: 200 }, 123.4)).toBe(200);
    expect(perTryTimeoutMs({ multiplier: 3, floorMs: 1 }, 0.1)).toBe(1);
    const [d] = methodDeadlines({ spec, methods: [m('/a.A/Get', 20, 7.56)], modelP99Ms: noModel });
    expect(d?.predictedP99Ms).toBe(7.6); // no binary residue in status
  });

  it('from the observed p99 with at least 20 calls, from the model when it gives one', () => {
    const methods = [m('/a.A/Few', 19, 5, 2), m('/a.A/Get', 20, 12.3, 4), m('/a.A/Put', 100, 40, 10)];
    expect(methodDeadlines({ spec, methods, modelP99Ms: noModel })).toEqual([
      { method: '/a.A/Get', predictedP99Ms: 12, perTryTimeoutMs: 25, source: 'Observed' },
      { method: '/a.A/Put', predictedP99Ms: 40, perTryTimeoutMs: 80, source: 'Observed' },
    ]);
    // the model needs the method's cost (5 calls); its figure wins where it is plausible
    const model = (x: { method: string }) => (x.method === '/a.A/Put' ? 5 : 33);
    expect(methodDeadlines({ spec, methods, modelP99Ms: model })).toEqual([
      { method: '/a.A/Few', predictedP99Ms: 33, perTryTimeoutMs: 66, source: 'Model' },
      { method: '/a.A/Get', predictedP99Ms: 33, perTryTimeoutMs: 66, source: 'Model' },
      // a model p99 below the observed median is not believed
      { method: '/a.A/Put', predictedP99Ms: 40, perTryTimeoutMs: 80, source: 'Observed' },
    ]);
  });

  it('holds a deadline within 15% of the new figure; moves it past that, or when the spec changes', () => {
    const previous: MethodDeadline[] = [
      { method: '/a.A/Get', predictedP99Ms: 50, perTryTimeoutMs: 100, source: 'Observed' },
    ];
    const at = (p99: number, s = spec) =>
      methodDeadlines({ spec: s, methods: [m('/a.A/Get', 50, p99)], modelP99Ms: noModel, previous })[0];
    expect(at(57)).toBe(previous[0]); // 110 ms: within 15%
    expect(at(44)).toBe(previous[0]); // 88 ms
    expect(at(58)).toMatchObject({ predictedP99Ms: 58, perTryTimeoutMs: 120 });
    expect(at(40)).toMatchObject({ perTryTimeoutMs: 80 });
    expect(at(50, { multiplier: 3, floorMs: 10 })).toMatchObject({ perTryTimeoutMs: 150 });
    // a change of source is a new deadline
    const model = methodDeadlines({
      spec,
      methods: [m('/a.A/Get', 50, 50, 5)],
      modelP99Ms: () => 50,
      previous,
    });
    expect(model[0]).toMatchObject({ perTryTimeoutMs: 100, source: 'Model' });
  });

  it('keeps a deadline while its method has a few calls, drops it with none; caps the list', () => {
    const previous: MethodDeadline[] = [
      { method: '/a.A/Get', predictedP99Ms: 50, perTryTimeoutMs: 100, source: 'Observed' },
    ];
    expect(
      methodDeadlines({ spec, methods: [m('/a.A/Get', 3, 400)], modelP99Ms: noModel, previous }),
    ).toEqual(previous);
    expect(methodDeadlines({ spec, methods: [], modelP99Ms: noModel, previous })).toEqual([]);
    const many = Array.from({ length: MAX_DEADLINES + 10 }, (_, i) =>
      m(`/a.A/M${String(i).padStart(3, '0')}`, 20 + i, 10),
    );
    const listed = methodDeadlines({ spec, methods: many, modelP99Ms: noModel });
    expect(listed).toHaveLength(MAX_DEADLINES);
    expect(listed[0]?.method).toBe('/a.A/M010'); // the ten least called are left out
    expect(listed.map((d) => d.method)).toEqual([...listed.map((d) => d.method)].sort());
  });
});

describe("a pool's latencies per method", () => {
  const counts = (calls: number, ms: number) => {
    const c = emptyCounts();
    c.calls = calls;
    c.counts[bucketOf(ms)] = calls;
    return c;
  };

  it('pools endpoints over a sliding window, and keeps at most MAX_METHODS_PER_POOL methods', () => {
    const s = new MethodLatencies(30_000);
    s.record('ns/p', new Map([['/a.A/Get', counts(10, 4)]]), 0);
    s.record('ns/p', new Map([['/a.A/Get', counts(30, 40)]]), 10_000);
    const f = s.figures('ns/p', 20_000);
    expect(f).toHaveLength(1);
    expect(f[0]?.calls).toBe(40);
    expect(f[0]?.p99Ms).toBeGreaterThan(30);
    expect(s.figures('ns/p', 35_000)[0]?.calls).toBe(30); // the first slice left the window
    expect(s.figures('ns/p', 45_000)).toEqual([]);
    expect(s.figures('ns/other', 0)).toEqual([]);

    const wide = new Map(
      Array.from({ length: MAX_METHODS_PER_POOL + 5 }, (_, i) => [`/a.A/M${i}`, counts(1, 1)]),
    );
    s.record('ns/p', wide, 50_000);
    expect(s.figures('ns/p', 50_000)).toHaveLength(MAX_METHODS_PER_POOL);
    s.forget('ns/p');
    expect(s.figures('ns/p', 50_000)).toEqual([]);
  });
});
