import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http2';

/**
 * The cache key of a call (DESIGN.md §7): sha256 over the method, the request's grpc-encoding
 * (compressed bytes differ from plain ones, and a response may be compressed to match), the values of
 * the listed key headers in a fixed order, and the request body exactly as received (length-prefixed
 * messages). Each part is length-delimited so no two different calls hash the same input. Lower-case hex.
 */
export function cacheKey(
  method: string,
  body: Buffer,
  headers: IncomingHttpHeaders,
  keyHeaders: readonly string[] = [],
): string {
  const h = createHash('sha256');
  const part = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.allocUnsafe(4);
    n.writeUInt32BE(b.length);
    h.update(n).update(b);
  };
  part('sibyl-cache-v1');
  part(method);
  part(value(headers['grpc-encoding']) ?? 'identity');
  for (const name of [...keyHeaders].sort()) {
    const v = value(headers[name]);
    // Absent and empty differ: a header may be sent empty on purpose.
    part(v === undefined ? `${name}\u0000absent` : `${name}=${v}`);
  }
  const n = Buffer.allocUnsafe(8);
  n.writeBigUInt64BE(BigInt(body.length));
  h.update(n).update(body);
  return h.digest('hex');
}

function value(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}
