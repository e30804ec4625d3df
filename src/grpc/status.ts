/**
 * gRPC status codes and the header forms a proxy needs to produce them itself
 * (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md,
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
 */

export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type StatusName = keyof typeof Status;
export type StatusCode = (typeof Status)[StatusName];

const NAMES = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k])) as Record<
  number,
  StatusName
>;

/** "UNAVAILABLE" for 14; "CODE_99" for a code outside the table. */
export function statusName(code: number): string {
  return NAMES[code] ?? `CODE_${code}`;
}

/** The kebab-case names the BackendPool API uses in `retries.retryOn` ("resource-exhausted"). */
export function statusFromRetryOn(name: string): StatusCode | undefined {
  const key = name.toUpperCase().replace(/-/g, '_');
  return key in Status ? Status[key as StatusName] : undefined;
}

/**
 * Whether a status counts against the server that produced it (for breakers, policies and limits):
 * the codes a healthy server does not return for a well-formed request. Application errors such as
 * NOT_FOUND or INVALID_ARGUMENT are answers; CANCELLED is the client's doing.
 */
export function isServerFault(code: number): boolean {
  return (
    code === Status.UNKNOWN ||
    code === Status.DEADLINE_EXCEEDED ||
    code === Status.RESOURCE_EXHAUSTED ||
    code === Status.INTERNAL ||
    code === Status.UNAVAILABLE ||
    code === Status.DATA_LOSS
  );
}

/**
 * grpc-message is percent-encoded UTF-8: bytes outside 0x20..0x7E, and '%' itself, become %XX
 * (PROTOCOL-HTTP2.md, "Responses").
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of encodeGrpcMessage; malformed escapes are kept as they are, as the spec asks. */
export function decodeGrpcMessage(text: string): string {
  const chunks: Buffer[] = [];
  for (const part of text.split(/(%[0-9A-Fa-f]{2})/)) {
    if (/^%[0-9A-Fa-f]{2}$/.test(part)) chunks.push(Buffer.of(parseInt(part.slice(1), 16)));
    else if (part) chunks.push(Buffer.from(part, 'utf8'));
  }
  return Buffer.concat(chunks).toString('utf8');
}

export type HeaderMap = Record<string, string | number | string[] | undefined>;

/** The trailer fields carrying a status (also the tail of a Trailers-Only response). */
export function statusTrailers(code: number, message?: string): HeaderMap {
  const t: HeaderMap = { 'grpc-status': String(code) };
  if (message) t['grpc-message'] = encodeGrpcMessage(message);
  return t;
}

/**
 * A Trailers-Only response: one HEADERS frame with END_STREAM carrying :status, content-type and the
 * status. `httpStatus` other than 200 is for requests that are not gRPC at all (415 for a wrong
 * content-type), which clients map by HTTP status before reading grpc-status.
 */
export function trailersOnlyHeaders(code: number, message?: string, httpStatus = 200): HeaderMap {
  return { ':status': httpStatus, 'content-type': 'application/grpc', ...statusTrailers(code, message) };
}

/**
 * The status a client derives from an HTTP/2 RST_STREAM error code when no grpc-status arrived
 * (PROTOCOL-HTTP2.md, "Errors"): REFUSED_STREAM means the server never saw the call.
 */
export function statusFromRstCode(rstCode: number): StatusCode {
  switch (rstCode) {
    case 0x7: // REFUSED_STREAM
      return Status.UNAVAILABLE;
    case 0x8: // CANCEL
      return Status.CANCELLED;
    case 0xb: // ENHANCE_YOUR_CALM
      return Status.RESOURCE_EXHAUSTED;
    case 0xc: // INADEQUATE_SECURITY
      return Status.PERMISSION_DENIED;
    default:
      return Status.INTERNAL;
  }
}

/** The status for an HTTP response that carried no grpc-status (PROTOCOL-HTTP2.md, http-grpc-status-mapping.md). */
export function statusFromHttp(httpStatus: number): StatusCode {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}
