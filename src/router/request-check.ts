import type { IncomingHttpHeaders } from 'node:http2';
import { Status } from '../grpc/status.js';
import { parseGrpcTimeout } from '../grpc/timeout.js';
import { isGrpcContentType } from './attempt.js';
import { headerValue } from './headers.js';
import { matchPool, splitMethod, type PoolRoute, type RoutingTable } from './table.js';

/** Why the router answers a request itself instead of routing it. */
export interface Refusal {
  code: number;
  message: string;
  /** Label for sibyl_router_rejected_total. */
  reason: 'method' | 'content-type' | 'path' | 'no-pool' | 'timeout';
  httpStatus: number;
}

export interface Routable {
  route: PoolRoute;
  /** The call's time budget: the client's grpc-timeout or the pool's timeout, whichever is shorter. */
  timeoutMs: number;
}

/**
 * Checks an incoming request's headers (PROTOCOL-HTTP2.md) and finds its pool: POST, an application/grpc
 * content-type (else HTTP 415 with INVALID_ARGUMENT), a /service/method path, a pool matching it
 * (else UNIMPLEMENTED), and a well-formed grpc-timeout (else INTERNAL, as grpc-go answers). Pure.
 */
export function checkRequest(h: IncomingHttpHeaders, table: RoutingTable): Routable | Refusal {
  const refuse = (code: number, message: string, reason: Refusal['reason'], httpStatus = 200): Refusal => ({
    code,
    message,
    reason,
    httpStatus,
  });
  if (h[':method'] !== 'POST') {
    return refuse(Status.UNIMPLEMENTED, `gRPC calls are POST, not ${h[':method']}`, 'method', 405);
  }
  const ct = headerValue(h, 'content-type');
  if (!isGrpcContentType(ct)) {
    return refuse(
      Status.INVALID_ARGUMENT,
      `content-type ${ct ?? 'none'} is not application/grpc`,
      'content-type',
      415,
    );
  }
  const path = headerValue(h, ':path') ?? '';
  const parts = splitMethod(path);
  if (!parts) return refuse(Status.UNIMPLEMENTED, `"${path}" is not a gRPC method path`, 'path');
  const route = matchPool(table, path);
  if (!route)
    return refuse(
      Status.UNIMPLEMENTED,
      `no pool matches the service ${parts[0]} (method ${path})`,
      'no-pool',
    );
  const timeout = headerValue(h, 'grpc-timeout');
  const clientMs = timeout === undefined ? undefined : parseGrpcTimeout(timeout);
  if (timeout !== undefined && clientMs === undefined) {
    return refuse(Status.INTERNAL, `malformed grpc-timeout "${timeout}"`, 'timeout');
  }
  return { route, timeoutMs: Math.min(clientMs ?? Infinity, route.timeoutMs ?? Infinity) };
}
