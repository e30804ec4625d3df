import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

/**
 * Which header fields a transparent gRPC proxy copies. Pseudo-headers are rebuilt for each hop;
 * connection-specific fields are forbidden in HTTP/2 (RFC 9113 §8.2.2) and so never copied; te is set
 * to "trailers" as gRPC requires; grpc-timeout is rewritten with the time left. Everything else,
 * including grpc-encoding, grpc-accept-encoding and binary (-bin) metadata, passes untouched.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'host',
  'http2-settings',
]);

function copy(from: IncomingHttpHeaders, skip: ReadonlySet<string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  // for-in, not Object.entries: no array of pairs per call on the hot path. Node's header objects
  // have a null prototype, so there is nothing inherited to skip.
  for (const k in from) {
    const v = from[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k) || skip.has(k)) continue;
    out[k] = v;
  }
  return out;
}

const REQUEST_SKIP = new Set(['grpc-timeout']);
const NONE = new Set<string>();

/** Headers for the upstream request; `timeout` is the grpc-timeout to send, if any. */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  path: string,
  timeout: string | undefined,
): OutgoingHttpHeaders {
  const out = copy(incoming, REQUEST_SKIP);
  out[':method'] = 'POST';
  out[':path'] = path;
  out[':scheme'] = 'http';
  if (incoming[':authority']) out[':authority'] = incoming[':authority'];
  out.te = 'trailers';
  if (timeout) out['grpc-timeout'] = timeout;
  return out;
}

/** Response headers (or trailers) to pass to the client. */
export function downstreamHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  return copy(incoming, NONE);
}

/** A header's single value (the first, when repeated). */
export function headerValue(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}
