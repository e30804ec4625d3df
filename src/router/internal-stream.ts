import type { OutgoingHttpHeaders } from 'node:http2';
import { Duplex } from 'node:stream';
import type { Answer } from '../cache/tiered.js';
import type { HeaderFields } from '../cache/types.js';

/**
 * The server side of a call the router makes to itself (the cache warmer's refresh), so the call runs
 * the whole pipeline (admission, pick, forward, retries, metrics) exactly as a client's would, with no
 * socket. It plays the part of a node:http2 ServerHttp2Stream as far as the pipeline uses one: the
 * readable side gives the request body and ends; respond / write / end / 'wantTrailers' / sendTrailers
 * record the response; close(code) is a reset. `answer` resolves once the call has ended: with the
 * status and response, or undefined when it was reset without one.
 */
export class InternalStream extends Duplex {
  readonly answer: Promise<Answer | undefined>;
  private resolve!: (a: Answer | undefined) => void;
  private sentBody = false;
  private headers: HeaderFields | undefined;
  private readonly chunks: Buffer[] = [];
  private waitForTrailers = false;

  constructor(private readonly body: Buffer) {
    // Not destroyed when both sides end (as http2 streams are not before their trailers): destroy()
    // comes only once the answer is complete, and it is what the pipeline reads as "closed".
    super({ allowHalfOpen: true, autoDestroy: false });
    this.answer = new Promise((r) => (this.resolve = r));
  }

  override _read(): void {
    if (this.sentBody) return;
    this.sentBody = true;
    if (this.body.length) this.push(this.body);
    this.push(null);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    cb();
    // As http2 does: with waitForTrailers, ending the body asks for the trailers.
    if (this.waitForTrailers) queueMicrotask(() => this.emit('wantTrailers'));
    else this.finish({});
  }

  /** Response headers; with endStream, a Trailers-Only response. */
  respond(headers: OutgoingHttpHeaders, opts: { endStream?: boolean; waitForTrailers?: boolean } = {}): void {
    this.headers = fields(headers);
    if (opts.endStream) return this.finish(undefined);
    this.waitForTrailers = opts.waitForTrailers === true;
  }

  sendTrailers(trailers: OutgoingHttpHeaders): void {
    this.finish(fields(trailers));
  }

  /** A reset: the call ends with no answer. */
  close(_code?: number): void {
    this.resolve(undefined);
    this.destroy();
  }

  /** `trailers` undefined: the response was Trailers-Only (its status in the headers). */
  private finish(trailers: HeaderFields | undefined): void {
    const headers = this.headers ?? {};
    const status = (trailers ?? headers)['grpc-status'];
    const code = Number(Array.isArray(status) ? status[0] : (status ?? 2));
    this.resolve({
      code: Number.isInteger(code) ? code : 2,
      response: {
        headers,
        body: Buffer.concat(this.chunks),
        trailers: trailers ?? {},
        ...(trailers === undefined ? { trailersOnly: true } : {}),
      },
    });
    this.destroy();
  }
}

/** Header fields without pseudo-headers, every value a string or list of strings. */
function fields(h: OutgoingHttpHeaders): HeaderFields {
  const out: HeaderFields = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.startsWith(':')) continue;
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}
