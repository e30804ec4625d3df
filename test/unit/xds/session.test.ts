import { packAny } from '../../../src/xds/proto.js';
import type { Encoded, ResourceSet } from '../../../src/xds/resources.js';
import { XdsSession } from '../../../src/xds/session.js';
import { TYPE, type TypeUrl } from '../../../src/xds/types.js';

const res = (name: string, hash: string): Encoded => ({
  name,
  hash,
  any: packAny('envoy.config.cluster.v3.Cluster', { name }),
});
const set = (type: TypeUrl, ...rs: Encoded[]): ResourceSet =>
  new Map([[type, new Map(rs.map((r) => [r.name, r]))]]);
const req = (type: string, names: string[], nonce = '', version = '', error?: string) => ({
  type_url: type,
  resource_names: names,
  response_nonce: nonce,
  version_info: version,
  ...(error ? { error_detail: { code: 3, message: error } } : {}),
});

describe('XdsSession (state of the world per type)', () => {
  it('answers a first request, then sends only different content', () => {
    const s = new XdsSession();
    expect(s.receive(req(TYPE.cluster, []))).toEqual({ outcome: 'request' });
    const all = set(TYPE.cluster, res('a', '1'), res('b', '1'));
    const r1 = s.respond(TYPE.cluster, all, 1);
    expect(r1).toMatchObject({ version_info: '1', nonce: '1', type_url: TYPE.cluster });
    expect(r1?.resources).toHaveLength(2); // an empty first CDS request is a wildcard
    expect(s.respond(TYPE.cluster, all, 2)).toBeUndefined();
    const r2 = s.respond(TYPE.cluster, set(TYPE.cluster, res('a', '2'), res('b', '1')), 2);
    expect(r2).toMatchObject({ version_info: '2', nonce: '2' });
  });

  it('sends nothing for a type never asked for', () => {
    expect(new XdsSession().respond(TYPE.listener, set(TYPE.listener, res('a', '1')), 1)).toBeUndefined();
  });

  it('records an ACK of the latest nonce; ignores a stale one', () => {
    const s = new XdsSession();
    s.receive(req(TYPE.endpoint, ['a']));
    s.respond(TYPE.endpoint, set(TYPE.endpoint, res('a', '1')), 1);
    s.respond(TYPE.endpoint, set(TYPE.endpoint, res('a', '2')), 2);
    expect(s.receive(req(TYPE.endpoint, ['a'], '1', '1'))).toEqual({ outcome: 'stale' });
    expect(s.state()[TYPE.endpoint]).toEqual({ sent: '2' });
    expect(s.receive(req(TYPE.endpoint, ['a'], '2', '2'))).toEqual({ outcome: 'ack' });
    expect(s.state()[TYPE.endpoint]).toEqual({ sent: '2', acked: '2' });
    expect(s.has(TYPE.endpoint, 'a', '2')).toBe(true);
  });

  it('a NACK keeps the last acknowledged version and the refused content is not sent again', () => {
    const s = new XdsSession();
    s.receive(req(TYPE.cluster, ['a', 'b']));
    s.respond(TYPE.cluster, set(TYPE.cluster, res('a', '1'), res('b', '1')), 1);
    s.receive(req(TYPE.cluster, ['a', 'b'], '1', '1'));
    const bad = set(TYPE.cluster, res('a', '1'), res('b', 'bad'));
    expect(s.respond(TYPE.cluster, bad, 2)).toBeDefined();
    const { outcome, nack } = s.receive(req(TYPE.cluster, ['a', 'b'], '2', '1', 'cluster b: weight 0'));
    expect(outcome).toBe('nack');
    expect(nack).toEqual({
      typeUrl: TYPE.cluster,
      version: '2',
      detail: 'cluster b: weight 0',
      names: ['b'],
    });
    expect(s.state()[TYPE.cluster]).toMatchObject({ acked: '1', sent: '2' });
    expect(s.has(TYPE.cluster, 'b', '1')).toBe(true);
    expect(s.respond(TYPE.cluster, bad, 3)).toBeUndefined(); // the same refused content
    expect(s.respond(TYPE.cluster, set(TYPE.cluster, res('a', '1'), res('b', 'fixed')), 4)).toMatchObject({
      version_info: '4',
    });
  });

  it('follows subscriptions: named for EDS, a response for every change of them; "*" and legacy wildcards', () => {
    const s = new XdsSession();
    const all = set(TYPE.endpoint, res('a', '1'), res('b', '1'));
    s.receive(req(TYPE.endpoint, ['a']));
    expect(s.respond(TYPE.endpoint, all, 1)?.resources).toHaveLength(1);
    s.receive(req(TYPE.endpoint, ['a', 'b'], '1', '1'));
    expect(s.respond(TYPE.endpoint, all, 1)).toMatchObject({ version_info: '1.1', resources: [{}, {}] });
    s.receive(req(TYPE.endpoint, [], '2', '1.1'));
    expect(s.respond(TYPE.endpoint, all, 1)?.resources).toEqual([]); // EDS has no wildcard
    const l = new XdsSession();
    l.receive(req(TYPE.listener, ['x']));
    expect(l.wants(TYPE.listener, 'y')).toBe(false);
    l.receive(req(TYPE.listener, ['*']));
    expect(l.wants(TYPE.listener, 'y')).toBe(true);
  });
});

describe('XdsSession for Envoy (cluster warming)', () => {
  it('sends EDS again after a changed Cluster, even when the assignment is the same', () => {
    const s = new XdsSession(true);
    s.receive(req(TYPE.cluster, []));
    s.receive(req(TYPE.endpoint, ['a']));
    expect(s.requested()).toEqual([TYPE.cluster, TYPE.endpoint]);
    const eds = set(TYPE.endpoint, res('a', '1'));
    s.respond(TYPE.cluster, set(TYPE.cluster, res('a', '1')), 1);
    s.respond(TYPE.endpoint, eds, 1);
    expect(s.respond(TYPE.endpoint, eds, 2)).toBeUndefined();
    expect(s.respond(TYPE.cluster, set(TYPE.cluster, res('a', '2')), 2)).toBeDefined();
    expect(s.respond(TYPE.endpoint, eds, 2)).toMatchObject({ version_info: '2' });
    expect(s.respond(TYPE.endpoint, eds, 2)).toBeUndefined();
    const grpc = new XdsSession();
    grpc.receive(req(TYPE.cluster, ['a']));
    grpc.receive(req(TYPE.endpoint, ['a']));
    grpc.respond(TYPE.cluster, set(TYPE.cluster, res('a', '1')), 1);
    grpc.respond(TYPE.endpoint, eds, 1);
    grpc.respond(TYPE.cluster, set(TYPE.cluster, res('a', '2')), 2);
    expect(grpc.respond(TYPE.endpoint, eds, 2)).toBeUndefined();
  });
});

describe('packAny', () => {
  it('refuses a field or an enum value the proto does not have, naming it', () => {
    expect(() =>
      packAny('envoy.config.cluster.v3.Cluster', { name: 'a', lb_polcy: 'LEAST_REQUEST' }),
    ).toThrow(/Cluster\.lb_polcy: envoy.config.cluster.v3.Cluster has no field lb_polcy/);
    expect(() => packAny('envoy.config.cluster.v3.Cluster', { lb_policy: 'FASTEST' })).toThrow(
      /FASTEST is not/,
    );
    expect(() =>
      packAny('envoy.config.endpoint.v3.ClusterLoadAssignment', {
        endpoints: [{ lb_endpoints: [{ weight: 1 }] }],
      }),
    ).toThrow(/lb_endpoints\.weight/);
  });
});
