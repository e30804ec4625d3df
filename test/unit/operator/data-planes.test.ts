import type { PoolObject } from '../../../src/operator/context.js';
import { buildPoolStatus } from '../../../src/operator/pool-status.js';
import { resolvePoolSpec } from '../../../src/api/resolve.js';
import {
  cacheDataPathCondition,
  dataPlaneCondition,
  dataPlanesStatus,
  shortDetail,
  type DataPlaneClientFacts,
  type DataPlaneFacts,
} from '../../../src/operator/data-plane-status.js';
import { DataPlanes } from '../../../src/operator/data-planes.js';
import type { Condition } from '../../../src/operator/conditions.js';
import type { XdsClientInfo, XdsNack, XdsPoolView } from '../../../src/xds/clients.js';
import { TYPE } from '../../../src/xds/types.js';

const at = new Date('2026-12-01T10:00:00.123Z');
const client = (over: Partial<DataPlaneClientFacts> = {}): DataPlaneClientFacts => ({
  node: 'n',
  kind: 'envoy',
  acked: { CDS: '3', EDS: '3' },
  current: true,
  refused: false,
  ...over,
});
const facts = (clients: DataPlaneClientFacts[]): DataPlaneFacts => ({
  clients,
  weights: new Map([['10.0.0.1:80', 500]]),
  stockPolicy: 'least_request',
});
const nack = { type: 'EDS', version: '4', detail: 'endpoint weight 0', at };

describe('dataPlaneCondition', () => {
  it('is absent without clients, True when all ACKed, False while one refuses, and kept while one has not answered', () => {
    expect(dataPlaneCondition(facts([]), undefined)).toBeUndefined();
    expect(dataPlaneCondition(facts([client(), client({ node: 'm' })]), undefined)).toMatchObject({
      status: 'True',
      reason: 'Synced',
    });
    const refused = dataPlaneCondition(
      facts([
        client(),
        client({ node: 'go-1', kind: 'grpc-go', current: false, refused: true, lastNack: nack }),
      ]),
      undefined,
    );
    expect(refused).toEqual({
      type: 'DataPlaneSynced',
      status: 'False',
      reason: 'XdsRejected',
      message:
        '1 of 2 xDS clients run their last good configuration: grpc-go client go-1 refused EDS version 4: endpoint weight 0',
    });
    const prev = { ...refused, lastTransitionTime: '2026-12-01T09:00:00Z' } as Condition;
    // Sent a newer version, not answered yet: the condition in force stays.
    expect(dataPlaneCondition(facts([client({ current: false, lastNack: nack })]), prev)).toMatchObject({
      status: 'False',
      reason: 'XdsRejected',
    });
    expect(dataPlaneCondition(facts([client({ current: false })]), undefined)).toMatchObject({
      status: 'Unknown',
      reason: 'Pending',
    });
  });
});

describe('cacheDataPathCondition', () => {
  const cache = (routers: string[]) => ({ methods: ['/a.S/Get', '/a.S/List'], routers });

  it('is absent without cacheable methods or without an Envoy', () => {
    expect(cacheDataPathCondition(facts([client()]))).toBeUndefined();
    expect(
      cacheDataPathCondition({ ...facts([client({ kind: 'grpc-go' })]), cache: cache(['10.0.0.9:8080']) }),
    ).toBeUndefined();
  });

  it('True with the routers that take the cacheable methods, False (NoRouters) with none', () => {
    const two = ['10.0.0.9:8080', '10.0.0.10:8080'];
    expect(cacheDataPathCondition({ ...facts([client()]), cache: cache(two) })).toMatchObject({
      type: 'CacheDataPath',
      status: 'True',
      reason: 'ThroughRouters',
      message: expect.stringMatching(/sends the 2 cacheable methods through 2 sibyl routers/),
    });
    expect(cacheDataPathCondition({ ...facts([client()]), cache: cache([]) })).toMatchObject({
      status: 'False',
      reason: 'NoRouters',
      message: expect.stringMatching(/straight to the backends, uncached/),
    });
  });
});

describe('shortDetail', () => {
  it("keeps the reason of Envoy's detail without the resource dump, and the head and tail of a long one", () => {
    const envoy =
      'goo.gle/debugstr  \ncluster_name: "demo.ns"\nendpoints {\n  lb_endpoints {\n  }\n}\n: Proto constraint validation failed (LbEndpointValidationError.LoadBalancingWeight: value must be greater than or equal to 1)';
    expect(shortDetail(envoy)).toBe(
      'Proto constraint validation failed (LbEndpointValidationError.LoadBalancingWeight: value must be greater than or equal to 1)',
    );
    expect(shortDetail('EDS response\n  contains  a zero weight')).toBe(
      'EDS response contains a zero weight',
    );
    const long = shortDetail(`start ${'x'.repeat(2000)} the cause`);
    expect(long).toHaveLength(900);
    expect(long).toMatch(/^start x+ … x+ the cause$/);
  });
});

describe('dataPlanesStatus', () => {
  it('counts clients by kind and lists at most 50, those out of sync first', () => {
    const many = Array.from({ length: 60 }, (_, i) =>
      client({ node: `e${String(i).padStart(2, '0')}`, current: i !== 59 }),
    );
    many.push(client({ node: 'go', kind: 'grpc-go', current: false, refused: true, lastNack: nack }));
    const s = dataPlanesStatus(facts(many));
    expect(s).toMatchObject({ connected: 61, byKind: { envoy: 60, 'grpc-go': 1 }, unlisted: 11 });
    expect(s?.clients).toHaveLength(50);
    expect(s?.clients?.slice(0, 3)).toEqual([
      {
        node: 'go',
        kind: 'grpc-go',
        synced: false,
        acked: { CDS: '3', EDS: '3' },
        lastNack: { type: 'EDS', version: '4', detail: 'endpoint weight 0', time: '2026-12-01T10:00:00Z' },
      },
      { node: 'e59', kind: 'envoy', synced: false, acked: { CDS: '3', EDS: '3' } },
      { node: 'e00', kind: 'envoy', synced: true, acked: { CDS: '3', EDS: '3' } },
    ]);
    expect(dataPlanesStatus(facts([]))).toBeUndefined();
  });

  it('goes into the pool status with the weight pushed per endpoint', () => {
    const spec = { endpoints: [{ address: '10.0.0.1:80' }], match: { services: ['a.B'] } };
    const pool = { metadata: { name: 'p', namespace: 'ns', generation: 2 }, spec } as unknown as PoolObject;
    const { status } = buildPoolStatus({
      pool,
      spec: resolvePoolSpec(spec),
      resolution: { ok: true, endpoints: [{ address: '10.0.0.1:80', ready: true }] },
      policy: 'RoundRobin',
      now: at,
      dataPlanes: facts([client()]),
    });
    expect(status.endpoints?.[0]?.xdsWeight).toBe(500);
    expect(status.dataPlanes?.connected).toBe(1);
    expect(status.conditions?.find((c) => c.type === 'DataPlaneSynced')).toMatchObject({
      status: 'True',
      observedGeneration: 2,
      lastTransitionTime: '2026-12-01T10:00:00Z',
    });
  });
});

describe('DataPlanes', () => {
  const info = (over: Partial<XdsClientInfo & { current: boolean }>) => ({
    id: '1',
    node: 'go-1',
    cluster: 'c',
    kind: 'grpc-go' as const,
    account: '',
    types: {},
    current: true,
    ...over,
  });
  const view = (clients: ReturnType<typeof info>[]): XdsPoolView => ({
    clients,
    byKind: {},
    weights: new Map(),
    stockPolicy: 'least_request',
  });
  const refusal: XdsNack = {
    pool: 'ns/p',
    client: { id: '1', node: 'go-1', kind: 'grpc-go' },
    typeUrl: TYPE.endpoint,
    version: '4',
    detail: 'weight 0',
  };

  function setup() {
    const events: string[] = [];
    const enqueued: string[] = [];
    const pool = { apiVersion: 'sibyl.dev/v1alpha1', kind: 'BackendPool', metadata: { name: 'p' } };
    const dp = new DataPlanes({
      ctx: {
        pools: { store: { get: (k: string) => (k === 'ns/p' ? pool : undefined), keys: () => ['ns/p'] } },
        events: {
          record: async (_o: unknown, type: string, reason: string, message: string) => {
            events.push(`${type} ${reason} ${message}`);
          },
        },
        wallClock: () => at,
      } as never,
      enqueue: (k) => enqueued.push(k),
    });
    return { dp, events, enqueued };
  }

  it('makes a refusal a Warning event at once and a refused client until it ACKs a later version', () => {
    const { dp, events, enqueued } = setup();
    dp.nacked(refusal);
    expect(events).toEqual(['Warning XdsRejected grpc-go client go-1 refused EDS version 4: weight 0']);
    expect(enqueued).toEqual(['ns/p']);
    const refused = dp.facts(
      'ns/p',
      view([info({ current: false, types: { EDS: { sent: '4', acked: '3', nack: undefined } } })]),
    );
    expect(refused?.clients[0]).toMatchObject({
      refused: true,
      acked: { EDS: '3' },
      lastNack: { type: 'EDS', version: '4', detail: 'weight 0', at },
    });
    // Still out of sync: an ACK anywhere looks at the pool again.
    enqueued.length = 0;
    dp.acked();
    expect(enqueued).toEqual(['ns/p']);
    // Sent version 5, not answered: not refusing any more, not synced either.
    expect(
      dp.facts('ns/p', view([info({ current: false, types: { EDS: { sent: '5', acked: '3' } } })]))
        ?.clients[0],
    ).toMatchObject({ refused: false, current: false });
    const synced = dp.facts('ns/p', view([info({ types: { EDS: { sent: '5', acked: '5' } } })]));
    expect(synced?.clients[0]).toMatchObject({ refused: false, current: true, lastNack: { version: '4' } });
    enqueued.length = 0;
    dp.acked();
    expect(enqueued).toEqual([]); // in sync: nothing to look at again
  });

  it('forgets the refusals of clients that left', () => {
    const { dp } = setup();
    dp.nacked(refusal);
    dp.clientsChanged([{ id: '2' }]);
    const f = dp.facts('ns/p', view([info({ current: false, types: { EDS: { sent: '4' } } })]));
    expect(f?.clients[0]?.lastNack).toBeUndefined();
    expect(f?.clients[0]?.refused).toBe(false);
  });
});
