import { checkRequest } from '../../../src/router/request-check.js';
import { LatencyTracker } from '../../../src/router/latency.js';
import { parseRouterConfig } from '../../../src/router/config.js';
import { tableFromConfig } from '../../../src/router/table.js';

const table = tableFromConfig(
  parseRouterConfig(`
pools:
  - name: a
    match: {services: [pkg.A]}
    endpoints: [{address: "h:1"}]
    timeout: {default: 2s}
`),
);
const grpc = { ':method': 'POST', ':path': '/pkg.A/Get', 'content-type': 'application/grpc+proto' };

describe('checkRequest', () => {
  it('routes a gRPC call and takes the shorter of the client and pool timeouts', () => {
    expect(checkRequest(grpc, table)).toMatchObject({ route: { name: 'a' }, timeoutMs: 2000 });
    // The client's deadline, less the router's offset (10%, at most 10 ms), so the router ends it first.
    expect(checkRequest({ ...grpc, 'grpc-timeout': '500m' }, table)).toMatchObject({ timeoutMs: 490 });
    expect(checkRequest({ ...grpc, 'grpc-timeout': '50m' }, table)).toMatchObject({ timeoutMs: 45 });
    expect(checkRequest({ ...grpc, 'grpc-timeout': '1M' }, table)).toMatchObject({ timeoutMs: 2000 });
  });

  it.each<[string, Record<string, string>, object]>([
    ['GET', { ':method': 'GET' }, { code: 12, httpStatus: 405, reason: 'method' }],
    ['no content-type', { 'content-type': '' }, { code: 3, httpStatus: 415, reason: 'content-type' }],
    ['JSON', { 'content-type': 'application/json' }, { code: 3, httpStatus: 415 }],
    ['a look-alike type', { 'content-type': 'application/grpcweb' }, { code: 3, httpStatus: 415 }],
    ['a bad path', { ':path': '/onlyone' }, { code: 12, reason: 'path' }],
    [
      'an unknown service',
      { ':path': '/pkg.B/Get' },
      { code: 12, reason: 'no-pool', message: expect.stringContaining('pkg.B') },
    ],
    ['a bad grpc-timeout', { 'grpc-timeout': '5s' }, { code: 13, reason: 'timeout' }],
  ])('refuses %s', (_what, change, refusal) => {
    expect(checkRequest({ ...grpc, ...change }, table)).toMatchObject(refusal);
  });
});

describe('LatencyTracker', () => {
  it('gives the p90 of recent calls once it has enough of them', () => {
    const t = new LatencyTracker(100, 20);
    for (let i = 1; i <= 19; i++) t.record('/m', i);
    expect(t.quantile('/m', 0.9)).toBeUndefined();
    for (let i = 20; i <= 100; i++) t.record('/m', i);
    expect(t.quantile('/m', 0.9)).toBe(91);
    for (let i = 0; i < 100; i++) t.record('/m', 1000);
    expect(t.quantile('/m', 0.9)).toBe(1000);
    expect(t.quantile('/other', 0.9)).toBeUndefined();
  });
});
