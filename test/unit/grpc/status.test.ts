import {
  Status,
  decodeGrpcMessage,
  encodeGrpcMessage,
  isServerFault,
  statusFromHttp,
  statusFromRetryOn,
  statusFromRstCode,
  statusName,
  trailersOnlyHeaders,
} from '../../../src/grpc/status.js';

describe('gRPC status helpers', () => {
  it('names every code from 0 to 16', () => {
    expect(Array.from({ length: 17 }, (_, i) => statusName(i))).toEqual(Object.keys(Status));
    expect(statusName(99)).toBe('CODE_99');
  });

  it('percent-encodes grpc-message as the spec asks and decodes it back', () => {
    expect(encodeGrpcMessage('a b%c')).toBe('a b%25c');
    expect(encodeGrpcMessage('ü\n')).toBe('%C3%BC%0A');
    for (const m of ['plain', '100% sure', 'ünïcødé ✓ 🚀', 'line\nbreak\ttab', '%zz', '']) {
      expect(decodeGrpcMessage(encodeGrpcMessage(m))).toBe(m);
    }
    expect(decodeGrpcMessage('bad %zz escape %4')).toBe('bad %zz escape %4');
  });

  it('builds a Trailers-Only response', () => {
    expect(trailersOnlyHeaders(Status.UNIMPLEMENTED, 'no pool')).toEqual({
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': '12',
      'grpc-message': 'no pool',
    });
    expect(trailersOnlyHeaders(Status.INVALID_ARGUMENT, undefined, 415)).toMatchObject({ ':status': 415 });
  });

  it('maps RST_STREAM codes and HTTP statuses as clients do', () => {
    expect(statusFromRstCode(7)).toBe(Status.UNAVAILABLE);
    expect(statusFromRstCode(8)).toBe(Status.CANCELLED);
    expect(statusFromRstCode(2)).toBe(Status.INTERNAL);
    expect(statusFromHttp(503)).toBe(Status.UNAVAILABLE);
    expect(statusFromHttp(404)).toBe(Status.UNIMPLEMENTED);
    expect(statusFromHttp(418)).toBe(Status.UNKNOWN);
  });

  it('reads retryOn names and tells server faults from answers', () => {
    expect(statusFromRetryOn('resource-exhausted')).toBe(Status.RESOURCE_EXHAUSTED);
    expect(statusFromRetryOn('nope')).toBeUndefined();
    expect(isServerFault(Status.UNAVAILABLE)).toBe(true);
    expect(isServerFault(Status.NOT_FOUND)).toBe(false);
    expect(isServerFault(Status.CANCELLED)).toBe(false);
  });
});
