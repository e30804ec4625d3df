import { cacheError, type CacheEntry, type HeaderFields } from './types.js';

/**
 * The bytes a store keeps for an entry:
 *
 *   "SBR1" | u8 flags (1 = Trailers-Only) | f64 expiresAtMs | u32 metaLength | meta (JSON of
 *   {headers, trailers}) | body
 *
 * Big-endian. The body (the gRPC messages) stays binary; only the header fields go through JSON.
 * Integrity (torn or corrupted files) is the disk tier's business: it wraps this in a checksum.
 */
const MAGIC = Buffer.from('SBR1');
const FIXED = MAGIC.length + 1 + 8 + 4;

export function encodeEntry(e: CacheEntry): Buffer {
  const meta = Buffer.from(JSON.stringify({ h: e.response.headers, t: e.response.trailers }), 'utf8');
  const head = Buffer.allocUnsafe(FIXED);
  MAGIC.copy(head, 0);
  head.writeUInt8(e.response.trailersOnly ? 1 : 0, 4);
  head.writeDoubleBE(e.expiresAtMs, 5);
  head.writeUInt32BE(meta.length, 13);
  return Buffer.concat([head, meta, e.response.body]);
}

/** The expiry (wall-clock ms) of an encoded entry without decoding the rest; undefined if not an entry. */
export function entryExpiresAt(buf: Buffer): number | undefined {
  if (buf.length < FIXED || !buf.subarray(0, 4).equals(MAGIC)) return undefined;
  return buf.readDoubleBE(5);
}

/** The entry in `buf`; throws ERR_CACHE when the bytes are not one. */
export function decodeEntry(buf: Buffer): CacheEntry {
  if (buf.length < FIXED || !buf.subarray(0, 4).equals(MAGIC)) throw cacheError('not a cache entry');
  const flags = buf.readUInt8(4);
  const expiresAtMs = buf.readDoubleBE(5);
  const metaLength = buf.readUInt32BE(13);
  if (FIXED + metaLength > buf.length) throw cacheError('cache entry truncated');
  let meta: { h: HeaderFields; t: HeaderFields };
  try {
    meta = JSON.parse(buf.toString('utf8', FIXED, FIXED + metaLength)) as typeof meta;
  } catch (e) {
    throw cacheError('cache entry metadata unreadable', e);
  }
  const response = {
    headers: meta.h,
    trailers: meta.t,
    body: buf.subarray(FIXED + metaLength),
    ...(flags & 1 ? { trailersOnly: true } : {}),
  };
  return { response, expiresAtMs };
}
