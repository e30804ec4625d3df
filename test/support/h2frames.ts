/**
 * HTTP/2 frames as bytes (RFC 9113 §4.1) and HPACK literals (RFC 7541 §6.2.2, no Huffman, no
 * indexing), for tests that must send what node:http2 refuses to: invalid pseudo-headers, upper-case
 * names, frames on the wrong stream, bad lengths.
 */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length & 0xffffff, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1), the prefix bits above N left 0. */
function hpackInt(n: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([n]);
  const out = [max];
  for (n -= max; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) + 128);
  out.push(n);
  return Buffer.from(out);
}

/** "Literal Header Field without Indexing — New Name": any name, as given (upper case included). */
export function hpackLiteral(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

export function headerBlock(headers: Array<[string, string]>): Buffer {
  return Buffer.concat(headers.map(([k, v]) => hpackLiteral(k, v)));
}

/** Frame types in a byte stream the server sent (for reading its answer on a raw connection). */
export function frameTypes(
  b: Buffer,
): Array<{ type: number; flags: number; stream: number; payload: Buffer }> {
  const out = [];
  for (let i = 0; i + 9 <= b.length;) {
    const len = b.readUIntBE(i, 3);
    if (i + 9 + len > b.length) break;
    out.push({
      type: b[i + 3] as number,
      flags: b[i + 4] as number,
      stream: b.readUInt32BE(i + 5) & 0x7fffffff,
      payload: b.subarray(i + 9, i + 9 + len),
    });
    i += 9 + len;
  }
  return out;
}

/** Splits a byte stream into frames (after skipping `skip` bytes: the client's connection preface). */
export class FrameReader {
  private buf = Buffer.alloc(0);

  constructor(
    private skip: number,
    private readonly onFrame: (type: number, flags: number, stream: number, payload: Buffer) => void,
  ) {}

  feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.skip > 0) {
      const n = Math.min(this.skip, this.buf.length);
      this.buf = this.buf.subarray(n);
      this.skip -= n;
    }
    while (this.buf.length >= 9) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + length) return;
      const stream = this.buf.readUInt32BE(5) & 0x7fffffff;
      this.onFrame(this.buf[3] as number, this.buf[4] as number, stream, this.buf.subarray(9, 9 + length));
      this.buf = this.buf.subarray(9 + length);
    }
  }
}
