import { Status, statusFromHttp } from '../grpc/status.js';

/** google.protobuf.Duration as decoded (longs as numbers; absent fields left out). */
interface Duration {
  seconds?: number;
  nanos?: number;
}

/**
 * The part of envoy.data.accesslog.v3.HTTPAccessLogEntry read here, as protobufjs decodes it (snake
 * case, defaults left out). Checked against Envoy 1.40's upstream access log entries.
 */
export interface AccessLogEntry {
  common_properties?: {
    time_to_last_upstream_rx_byte?: Duration;
    duration?: Duration;
    upstream_remote_address?: { socket_address?: { address?: string; port_value?: number } };
    upstream_cluster?: string;
    response_flags?: Record<string, unknown>;
  };
  request?: { request_body_bytes?: number; path?: string };
  response?: {
    response_code?: { value?: number };
    response_headers?: Record<string, string>;
    response_trailers?: Record<string, string>;
  };
}

/** One upstream attempt: which cluster and address it went to, how it ended, how long it took. */
interface LoggedAttempt {
  cluster: string;
  host: string;
  port: number;
  code: number;
  latencyMs: number;
  requestBytes: number;
  /** The gRPC method, "/package.Service/Method" (the request's :path). */
  method?: string;
}

const ms = (d: Duration | undefined): number | undefined =>
  d ? (d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6 : undefined;

/** Envoy's response flags saying the upstream refused, dropped or broke the attempt. */
const UNAVAILABLE_FLAGS = [
  'upstream_connection_failure',
  'upstream_connection_termination',
  'upstream_remote_reset',
  'upstream_overflow',
  'no_healthy_upstream',
  'upstream_protocol_error',
];

/**
 * The gRPC status of an attempt: grpc-status from the trailers, or from the headers of a
 * Trailers-Only response. Without one: UNAVAILABLE when Envoy's flags say the upstream refused,
 * dropped or broke it; the HTTP status mapped as gRPC clients map it (statusFromHttp) when it is not
 * 200; otherwise Envoy reset the attempt itself before it ended, which in sibyl's routes is a hedge or
 * retry that lost to another attempt, a per-try timeout (set only to hedge: src/xds/routes.ts), or the
 * caller leaving: CANCELLED, as a router counts the hedge it cancels. Checked with Envoy 1.40: a hedge
 * loser's entry has no response and no flag, or the per-try timeout's flag.
 */
export function attemptStatus(e: AccessLogEntry): number {
  const r = e.response;
  const text = r?.response_trailers?.['grpc-status'] ?? r?.response_headers?.['grpc-status'];
  if (text !== undefined && /^[0-9]{1,2}$/.test(text)) return Number(text);
  const flags = e.common_properties?.response_flags ?? {};
  if (UNAVAILABLE_FLAGS.some((f) => flags[f] === true)) return Status.UNAVAILABLE;
  const http = r?.response_code?.value;
  if (http && http !== 200) return statusFromHttp(http);
  return Status.CANCELLED;
}

/**
 * What an upstream access log entry says of its attempt, or undefined when it names no upstream
 * (a call Envoy answered itself: no route, no healthy host chosen). Latency is the time to the last
 * byte from the upstream, as a caller sees the attempt end; an attempt without a response counts its
 * whole duration.
 */
export function loggedAttempt(e: AccessLogEntry): LoggedAttempt | undefined {
  const c = e.common_properties;
  const sock = c?.upstream_remote_address?.socket_address;
  if (!c?.upstream_cluster || !sock?.address || !sock.port_value) return undefined;
  return {
    cluster: c.upstream_cluster,
    host: sock.address,
    port: sock.port_value,
    code: attemptStatus(e),
    latencyMs: ms(c.time_to_last_upstream_rx_byte) ?? ms(c.duration) ?? 0,
    requestBytes: e.request?.request_body_bytes ?? 0,
    ...(e.request?.path ? { method: e.request.path.split('?')[0] as string } : {}),
  };
}
