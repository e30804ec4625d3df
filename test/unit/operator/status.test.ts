import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { BackendPool } from '../../../src/api/backendpool.js';
import { setCondition } from '../../../src/operator/conditions.js';
import { decisionSentence } from '../../../src/operator/decision.js';
import { resolveService } from '../../../src/operator/endpoints.js';
import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { buildPoolStatus, type PoolWorld } from '../../../src/operator/pool-status.js';

/** Status for a world with the pool's spec resolved and its own policy in force (no control plane). */
const statusOf = (w: Omit<PoolWorld, 'spec' | 'policy'>) => {
  const spec = resolvePoolSpec(w.pool.spec);
  return buildPoolStatus({ ...w, spec, policy: spec.balancing.policy });
};

const svc: V1Service = {
  metadata: { name: 'co' },
  spec: {
    ports: [
      { name: 'grpc', port: 80 },
      { name: 'metrics', port: 9090 },
    ],
  },
};
const slice = (
  eps: Array<[string, boolean | undefined, string?]>,
  port = 50051,
  type = 'IPv4',
): V1EndpointSlice => ({
  addressType: type,
  ports: [
    { name: 'grpc', port },
    { name: 'metrics', port: 9090 },
  ],
  endpoints: eps.map(([ip, ready, pod]) => ({
    addresses: [ip],
    ...(ready === undefined ? {} : { conditions: { ready } }),
    ...(pod ? { targetRef: { kind: 'Pod', name: pod } } : {}),
  })),
});
const spec = (port?: number | string) => ({
  service: { name: 'co', ...(port !== undefined ? { port } : {}) },
  match: { services: ['a.B'] },
});

describe('resolveService', () => {
  it('takes the named port, counts a missing ready condition as ready, dedupes across slices', () => {
    const r = resolveService(spec('grpc'), 'ns', svc, [
      slice([
        ['10.0.0.1', true, 'a'],
        ['10.0.0.2', undefined],
      ]),
      slice([
        ['10.0.0.1', false],
        ['fd00::1', false],
      ]),
    ]);
    expect(r).toEqual({
      ok: true,
      endpoints: [
        { address: '[fd00::1]:50051', ready: false },
        { address: '10.0.0.1:50051', ready: true, pod: 'a' },
        { address: '10.0.0.2:50051', ready: true },
      ],
    });
  });
  it('finds the port by number', () => {
    const r = resolveService(spec(9090), 'ns', svc, [slice([['10.0.0.1', true]])]);
    expect(r.ok && r.endpoints[0]?.address).toBe('10.0.0.1:9090');
  });
  it('names each problem', () => {
    expect(resolveService(spec(), 'ns', undefined, [])).toMatchObject({
      ok: false,
      reason: 'ServiceNotFound',
      message: 'Service ns/co does not exist',
    });
    expect(resolveService(spec(), 'ns', svc, [])).toMatchObject({ ok: false, reason: 'PortAmbiguous' });
    expect(resolveService(spec('http'), 'ns', svc, [])).toMatchObject({
      ok: false,
      reason: 'PortNotFound',
      message: 'Service co has no port http (it has: grpc/80, metrics/9090)',
    });
  });
  it('reads FQDN slices (backends on loopback)', () => {
    const r = resolveService(spec('grpc'), 'ns', svc, [slice([['b1.localhost', true]], 50001, 'FQDN')]);
    expect(r.ok && r.endpoints[0]?.address).toBe('b1.localhost:50001');
  });
});

describe('conditions', () => {
  it('moves lastTransitionTime only when status changes', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:01:00Z');
    const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'R', message: 'm' }, 1, t1);
    const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'R2', message: 'm2' }, 2, t2);
    expect(b[0]).toMatchObject({
      lastTransitionTime: '2026-01-01T00:00:00Z',
      reason: 'R2',
      observedGeneration: 2,
    });
    const c = setCondition(b, { type: 'Ready', status: 'False', reason: 'R3', message: 'm3' }, 2, t2);
    expect(c[0]?.lastTransitionTime).toBe('2026-01-01T00:01:00Z');
  });
});

describe('decision sentence', () => {
  const ep = (address: string, extra: object = {}) => ({ address, ready: true, ...extra });
  it('says where traffic goes and why', () => {
    expect(
      decisionSentence('PeakEwma', [
        ep('a'),
        ep('b', { pod: 'co-2bd', breaker: 'Open' }),
        ep('c', { ready: false, pod: 'co-x' }),
      ]),
    ).toBe('PeakEwma: 2 of 3 endpoints ready; co-2bd excluded (breaker open); co-x excluded (not ready)');
    expect(
      decisionSentence('Predictive', [
        ep('a', { pod: 'fast', predictedLatencyMs: 2.5 }),
        ep('b', { pod: 'slow', predictedLatencyMs: 40 }),
      ]),
    ).toBe(
      'Predictive: 2 of 2 endpoints ready; most traffic to fast (predicted 2.5ms), least to slow (predicted 40ms)',
    );
    expect(decisionSentence('RoundRobin', [], 'Service ns/x does not exist')).toBe(
      'No traffic: Service ns/x does not exist.',
    );
    expect(decisionSentence('RoundRobin', [ep('a', { ready: false })])).toBe(
      'No traffic: 0 of 1 endpoints ready.',
    );
  });
});

describe('buildPoolStatus', () => {
  const pool = (status?: object): BackendPool => ({
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'BackendPool',
    metadata: { name: 'co', namespace: 'ns', generation: 3 },
    spec: { ...spec('grpc'), balancing: { policy: 'PeakEwma' } },
    ...(status ? { status } : {}),
  });
  const now = new Date('2026-01-01T00:00:00Z');
  it('is the same for the same world, so an unchanged world writes nothing', () => {
    const world = {
      pool: pool(),
      resolution: { ok: true as const, endpoints: [{ address: 'a:1', ready: true }] },
      now,
    };
    const first = statusOf(world);
    const again = statusOf({
      ...world,
      pool: pool(first.status),
      now: new Date('2026-01-01T01:00:00Z'),
    });
    expect(again.status).toEqual(first.status);
    expect(again.events).toEqual([]);
    expect(first.events.map((e) => e.reason)).toEqual(['EndpointAdded']);
  });
  it('emits EndpointRemoved and a warning when no endpoint is ready', () => {
    const before = statusOf({
      pool: pool(),
      resolution: { ok: true, endpoints: [{ address: 'a:1', ready: true }] },
      now,
    }).status;
    const r = statusOf({ pool: pool(before), resolution: { ok: true, endpoints: [] }, now });
    expect(r.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'EndpointRemoved'],
      ['Warning', 'NoReadyEndpoints'],
    ]);
    expect(r.status.endpointsSummary).toBe('0/0');
  });
  it('lists the per-method deadlines only when spec.timeout.predicted is set', () => {
    const deadlines = [
      { method: '/a.B/Get', predictedP99Ms: 12, perTryTimeoutMs: 25, source: 'Observed' as const },
    ];
    const resolution = { ok: true as const, endpoints: [{ address: 'a:1', ready: true }] };
    const predicted: BackendPool = {
      ...pool(),
      spec: { ...pool().spec, timeout: { predicted: { multiplier: 2 } } },
    };
    expect(statusOf({ pool: predicted, resolution, deadlines, now }).status.deadlines).toEqual(deadlines);
    expect(statusOf({ pool: pool(), resolution, deadlines, now }).status).not.toHaveProperty('deadlines');
    expect(statusOf({ pool: predicted, resolution, deadlines: [], now }).status).not.toHaveProperty(
      'deadlines',
    );
  });
  it('shows the figures it is given and the best predicted endpoint', () => {
    const figures = new Map([
      ['a:1', { latencyP99Ms: 12, predictedLatencyMs: 3, breaker: 'Closed' as const }],
      ['b:1', { latencyP99Ms: 80, predictedLatencyMs: 30, breaker: 'Open' as const }],
    ]);
    const r = statusOf({
      pool: pool(),
      resolution: {
        ok: true,
        endpoints: [
          { address: 'a:1', ready: true, pod: 'fast' },
          { address: 'b:1', ready: true },
        ],
      },
      figures,
      now,
    });
    expect(r.status).toMatchObject({ p99: '80ms', best: 'fast 3.0ms', openBreakers: 1 });
  });
});

describe('Degraded', () => {
  it('is True with the anomaly message while one is active, False otherwise', () => {
    const pool: BackendPool = {
      apiVersion: 'sibyl.dev/v1alpha1',
      kind: 'BackendPool',
      metadata: { name: 'co', namespace: 'ns', generation: 1 },
      spec: { endpoints: [{ address: 'a:1' }], match: { services: ['a.B'] } },
    };
    const resolution = { ok: true as const, endpoints: [{ address: 'a:1', ready: true }] };
    const now = new Date('2026-01-01T00:00:00Z');
    const active = [
      {
        metric: 'p99Ms' as const,
        reason: 'LatencyAnomaly' as const,
        message: 'p99 80ms vs usual 10ms',
        points: 3,
      },
    ];
    const bad = statusOf({ pool, resolution, anomalies: active, now }).status;
    expect(bad.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'LatencyAnomaly',
      message: 'p99 80ms vs usual 10ms',
    });
    const good = statusOf({ pool, resolution, anomalies: [], now }).status;
    expect(good.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'False',
      reason: 'NoAnomaly',
    });
    expect(
      statusOf({ pool, resolution, now }).status.conditions?.find((c) => c.type === 'Degraded'),
    ).toBeUndefined();
  });
});

describe('ModelReady', () => {
  const pool = (balancing?: object): BackendPool => ({
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'BackendPool',
    metadata: { name: 'co', namespace: 'ns', generation: 1 },
    spec: {
      endpoints: [{ address: 'a:1' }],
      match: { services: ['a.B'] },
      ...(balancing ? { balancing } : {}),
    },
  });
  const resolution = { ok: true as const, endpoints: [{ address: 'a:1', ready: true }] };
  const now = new Date('2026-01-01T00:00:00Z');
  const world = (p: BackendPool, policy: PoolWorld['policy'], model?: PoolWorld['model']): PoolWorld => ({
    pool: p,
    spec: resolvePoolSpec(p.spec),
    resolution,
    policy,
    now,
    ...(model ? { model } : {}),
  });
  const cond = (r: ReturnType<typeof buildPoolStatus>) =>
    r.status.conditions?.find((c) => c.type === 'ModelReady');

  it('says a Predictive pool without a model routes with its fallback, and warns once', () => {
    const w = world(pool(), 'PeakEwma', { samples: 12, ready: false, reason: 'no default model' });
    const r = buildPoolStatus(w);
    expect(r.status.policy).toBe('PeakEwma');
    expect(cond(r)).toMatchObject({
      status: 'False',
      reason: 'PolicyFallback',
      message: 'no default model; routing with PeakEwma until a model is ready',
    });
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'PolicyFallback' }));
    expect(buildPoolStatus({ ...w, pool: { ...w.pool, status: r.status } }).events).toEqual([]);
    const named = buildPoolStatus(
      world(pool({ policy: 'Predictive', fallbackPolicy: 'RoundRobin' }), 'RoundRobin', {
        samples: 0,
        ready: false,
        reason: 'no default model',
      }),
    );
    expect(cond(named)?.message).toBe('no default model; routing with RoundRobin until a model is ready');
  });

  it('is True with the model in force, which status.model names', () => {
    const r = buildPoolStatus(
      world(pool(), 'Predictive', {
        version: 'v1',
        samples: 40,
        holdoutError: 0.31,
        ready: true,
        reason: 'loaded',
      }),
    );
    expect(r.status.policy).toBe('Predictive');
    expect(cond(r)).toMatchObject({ status: 'True', reason: 'ModelLoaded', message: 'model v1: loaded' });
    expect(r.status.model).toEqual({ version: 'v1', samples: 40, holdoutError: 0.31 });
  });

  it('is absent for another policy, and without a control plane', () => {
    const model = { version: 'v1', samples: 0, ready: true, reason: 'loaded' };
    expect(
      cond(buildPoolStatus(world(pool({ policy: 'LeastRequest' }), 'LeastRequest', model))),
    ).toBeUndefined();
    expect(cond(buildPoolStatus(world(pool(), 'Predictive')))).toBeUndefined();
  });
});
