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

function refuse(code: number, message: string, reason: Refusal['reason'], httpStatus = 200): Refusal {
  return { code, message, reason, httpStatus };
}

/**
 * Paths already matched to a pool, per table (tables are immutable, so an entry never goes stale; a new
 * table starts an empty map). Only matches are kept, and at most MAX_CACHED_PATHS of them, so hostile
 * paths cannot grow it: this saves the path's parse and lookups on every call of a known method.
 */
const matched = new WeakMap<RoutingTable, Map<string, PoolRoute>>();
const MAX_CACHED_PATHS = 4096;

/**
 * Checks an incoming request's headers (PROTOCOL-HTTP2.md) and finds its pool: POST, an application/grpc
 * content-type (else HTTP 415 with INVALID_ARGUMENT), a /service/method path, a pool matching it
 * (else UNIMPLEMENTED), and a well-formed grpc-timeout (else INTERNAL, as grpc-go answers). Pure.
 */
export function checkRequest(h: IncomingHttpHeaders, table: RoutingTable): Routable | Refusal {
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
  let routes = matched.get(table);
  if (!routes) matched.set(table, (routes = new Map()));
  let route = routes.get(path);
  if (!route) {
    const parts = splitMethod(path);
    if (!parts) return refuse(Status.UNIMPLEMENTED, `"${path}" is not a gRPC method path`, 'path');
    route = matchPool(table, path);
    if (!route)
      return refuse(
        Status.UNIMPLEMENTED,
        `no pool matches the service ${parts[0]} (method ${path})`,
        'no-pool',
      );
    if (routes.size < MAX_CACHED_PATHS) routes.set(path, route);
  }
  const timeout = headerValue(h, 'grpc-timeout');
  const clientMs = timeout === undefined ? undefined : parseGrpcTimeout(timeout);
  if (timeout !== undefined && clientMs === undefined) {
    return refuse(Status.INTERNAL, `malformed grpc-timeout "${timeout}"`, 'timeout');
  }
  const clientBudget = clientMs === undefined ? Infinity : clientMs - deadlineOffsetMs(clientMs);
  return { route, timeoutMs: Math.min(clientBudget, route.settings.timeoutMs ?? Infinity) };
}

/**
 * How much earlier than the client's grpc-timeout the router ends a call: 10% of it, at most 10 ms.
 * The client's clock started before the request reached the router, so without an offset the client's
 * own deadline fires first and the router sees only a cancellation, which says nothing about the
 * endpoint (breakers ignore it): a black-hole backend behind client deadlines would never be ejected.
 * Ending the call first, the router answers DEADLINE_EXCEEDED itself and counts it against the
 * endpoint. Envoy's `grpc_timeout_header_offset` does the same.
 */
function deadlineOffsetMs(clientMs: number): number {
  return Math.min(10, 0.1 * clientMs);
}
