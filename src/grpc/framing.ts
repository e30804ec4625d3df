/**
 * An incremental scanner for gRPC length-prefixed messages (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
 * each message is a 1-byte compressed flag (0 or 1), a 4-byte big-endian length and that many bytes.
 * The router never decodes messages; it only watches the prefixes as bytes stream past, to enforce a
 * maximum message size and refuse malformed framing, and to learn the first message's size for the
 * balancer. Pure: feed it chunks in order, in any split.
 */

export type FrameErrorKind = 'bad-flag' | 'too-large' | 'truncated';

export interface FrameError {
  kind: FrameErrorKind;
  /** A sentence for grpc-message. */
  message: string;
}

export class FrameScanner {
  /** Bytes still expected of the current message body. */
  private remaining = 0;
  /** Prefix bytes seen of the next message (0 when between messages). */
  private header = Buffer.alloc(5);
  private headerFill = 0;
  private inBody = false;
  private failed: FrameError | undefined;
  /** Completed or started messages. */
  messages = 0;
  /** The length of the first message, once its prefix has been read. */
  firstLength: number | undefined;

  constructor(readonly maxMessageBytes: number) {}

  /** Scans `chunk`; returns the first framing error met (and the same error on every later call). */
  feed(chunk: Uint8Array): FrameError | undefined {
    if (this.failed) return this.failed;
    let i = 0;
    while (i < chunk.length) {
      if (this.inBody) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.inBody = false;
        continue;
      }
      this.header[this.headerFill++] = chunk[i++] as number;
      if (this.headerFill < 5) continue;
      this.headerFill = 0;
      const err = this.startMessage(this.header.readUInt8(0), this.header.readUInt32BE(1));
      if (err) return (this.failed = err);
    }
    return undefined;
  }

  /** Call at end of stream: an unfinished prefix or body is an error. */
  end(): FrameError | undefined {
    if (this.failed) return this.failed;
    if (this.inBody || this.headerFill > 0) {
      const got = this.inBody ? `${this.remaining} bytes of the message body` : 'part of a message prefix';
      this.failed = { kind: 'truncated', message: `stream ended with ${got} missing` };
    }
    return this.failed;
  }

  /** True between messages (nothing partial pending). */
  get atBoundary(): boolean {
    return !this.inBody && this.headerFill === 0;
  }

  private startMessage(flag: number, length: number): FrameError | undefined {
    if (flag !== 0 && flag !== 1) {
      return { kind: 'bad-flag', message: `malformed gRPC frame: compressed flag ${flag} (must be 0 or 1)` };
    }
    if (length > this.maxMessageBytes) {
      return {
        kind: 'too-large',
        message: `message of ${length} bytes exceeds the limit of ${this.maxMessageBytes} bytes`,
      };
    }
    this.messages++;
    if (this.firstLength === undefined) this.firstLength = length;
    this.remaining = length;
    this.inBody = length > 0;
    return undefined;
  }
}

/** One length-prefixed message (for tests and for the router's own responses). */
export function encodeFrame(payload: Uint8Array, compressed = false): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt8(compressed ? 1 : 0, 0);
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}
