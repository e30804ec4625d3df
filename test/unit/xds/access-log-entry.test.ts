import { Status } from '../../../src/grpc/status.js';
import { attemptStatus, loggedAttempt, type AccessLogEntry } from '../../../src/xds/access-log-entry.js';

/**
 * Upstream access log entries as Envoy 1.40 sent them to sibyl's ALS service (decoded as the service
 * decodes them), trimmed of fields the mapping does not read: an Echo answered OK, one answered
 * UNAVAILABLE Trailers-Only, the slow attempt of a hedged call (per-try timeout, then reset when the
 * hedge answered), and the hedge that lost to the original (reset, no flag).
 */
const upstream = { socket_address: { address: '127.0.0.1', port_value: 42827 } };
const OK: AccessLogEntry = {
  common_properties: {
    time_to_last_upstream_rx_byte: { nanos: 27824101 },
    upstream_remote_address: upstream,
    upstream_cluster: 'demo.s',
    duration: { nanos: 27981466 },
  },
  request: { request_body_bytes: 134, path: '/sibyl.demo.v1.Demo/Echo' },
  response: { response_code: { value: 200 }, response_trailers: { 'grpc-status': '0' } },
};
const TRAILERS_ONLY: AccessLogEntry = {
  common_properties: {
    time_to_last_upstream_rx_byte: { nanos: 2284780 },
    upstream_remote_address: upstream,
    upstream_cluster: 'demo.s',
    duration: { nanos: 2434844 },
  },
  request: {},
  response: { response_code: { value: 200 }, response_headers: { 'grpc-status': '14' } },
};
const PER_TRY_TIMEOUT: AccessLogEntry = {
  common_properties: {
    upstream_remote_address: upstream,
    upstream_cluster: 'demo.s',
    response_flags: { upstream_request_timeout: true },
    duration: { nanos: 45697973 },
  },
  request: {},
  response: {},
};
const HEDGE_LOST: AccessLogEntry = {
  common_properties: {
    upstream_remote_address: upstream,
    upstream_cluster: 'demo.s',
    duration: { nanos: 51837615 },
  },
  request: {},
  response: {},
};

describe('an upstream access log entry', () => {
  it('names the cluster and upstream, its status, the time to the last upstream byte and the request size', () => {
    expect(loggedAttempt(OK)).toEqual({
      cluster: 'demo.s',
      host: '127.0.0.1',
      port: 42827,
      code: Status.OK,
      latencyMs: 27.824101,
      requestBytes: 134,
      method: '/sibyl.demo.v1.Demo/Echo',
    });
    expect(loggedAttempt(TRAILERS_ONLY)).toMatchObject({
      code: Status.UNAVAILABLE,
      latencyMs: 2.28478,
      requestBytes: 0,
    });
  });

  it('counts an attempt without a response for its whole duration', () => {
    expect(loggedAttempt(PER_TRY_TIMEOUT)?.latencyMs).toBeCloseTo(45.698, 3);
    expect(
      loggedAttempt({
        ...HEDGE_LOST,
        common_properties: { ...HEDGE_LOST.common_properties, duration: { seconds: 2, nanos: 5e8 } },
      })?.latencyMs,
    ).toBe(2500);
  });

  it('takes a hedge or retry Envoy reset itself as CANCELLED, an upstream that broke it as UNAVAILABLE', () => {
    expect(attemptStatus(PER_TRY_TIMEOUT)).toBe(Status.CANCELLED);
    expect(attemptStatus(HEDGE_LOST)).toBe(Status.CANCELLED);
    for (const flag of ['upstream_connection_failure', 'upstream_remote_reset', 'upstream_overflow'])
      expect(attemptStatus({ ...HEDGE_LOST, common_properties: { response_flags: { [flag]: true } } })).toBe(
        Status.UNAVAILABLE,
      );
  });

  it('maps an HTTP status without grpc-status as gRPC clients do', () => {
    const http = (value: number): AccessLogEntry => ({ response: { response_code: { value } } });
    expect(attemptStatus(http(503))).toBe(Status.UNAVAILABLE);
    expect(attemptStatus(http(404))).toBe(Status.UNIMPLEMENTED);
    expect(attemptStatus(http(500))).toBe(Status.UNKNOWN);
    // grpc-status wins over the HTTP status; a malformed one is ignored
    expect(
      attemptStatus({
        response: { response_code: { value: 503 }, response_trailers: { 'grpc-status': '4' } },
      }),
    ).toBe(Status.DEADLINE_EXCEEDED);
    expect(
      attemptStatus({
        response: { response_code: { value: 502 }, response_trailers: { 'grpc-status': 'x' } },
      }),
    ).toBe(Status.UNAVAILABLE);
  });

  it('is skipped without an upstream (a call Envoy answered itself)', () => {
    expect(
      loggedAttempt({
        common_properties: { upstream_cluster: 'demo.s' },
        response: { response_code: { value: 404 } },
      }),
    ).toBeUndefined();
    expect(loggedAttempt({ common_properties: { upstream_remote_address: upstream } })).toBeUndefined();
    expect(loggedAttempt({})).toBeUndefined();
  });
});
