import type { OutgoingHttpHeaders } from 'node:http2';
import { Status } from '../grpc/status.js';
import { Downstream } from './downstream.js';
import type { Answer } from '../cache/tiered.js';
import type { HeaderFields } from '../cache/types.js';

interface Tape {
  headers?: HeaderFields;
  body: Buffer[];
  bytes: number;
  trailers?: HeaderFields;
  trailersOnly: boolean;
  /** The body outgrew the limit: nothing can be shared or stored. */
  overflow: boolean;
}

/**
 * The client's side of a call that can also record what it sends (the leader of a cache miss): the
 * response headers, the body bytes exactly as written (length-prefixed messages) and the trailers, so
 * the answer can be stored and given to the calls that waited for it. Recording is off until
 * startCapture(); until then this is a plain Downstream.
 *
 * The body is recorded by wrapping `write` on this call's own stream object: the attempt writes
 * response chunks straight to the stream (attempt.ts), and this keeps that hot path untouched.
 */
export class CapturingDownstream extends Downstream {
  private tape: Tape | undefined;
  private routerMade = false;

  startCapture(maxBodyBytes: number): void {
    if (this.tape) return;
    const tape: Tape = { body: [], bytes: 0, trailersOnly: false, overflow: false };
    this.tape = tape;
    const s = this.stream;
    const write = s.write;
    s.write = function (this: unknown, chunk: unknown, ...rest: unknown[]): boolean {
      if (!tape.overflow && Buffer.isBuffer(chunk)) {
        tape.bytes += chunk.length;
        if (tape.bytes > maxBodyBytes) {
          tape.overflow = true;
          tape.body = [];
        } else tape.body.push(chunk);
      }
      return (write as (...a: unknown[]) => boolean).apply(s, [chunk, ...rest]);
    } as typeof s.write;
  }

  override sendHeaders(headers: OutgoingHttpHeaders): void {
    if (this.tape && !this.isCommitted && !this.isFinished) this.tape.headers = fields(headers);
    super.sendHeaders(headers);
  }

  override endWithTrailers(trailers: OutgoingHttpHeaders, code: number): void {
    if (this.tape && !this.isFinished && this.isCommitted) this.tape.trailers = fields(trailers);
    super.endWithTrailers(trailers, code);
  }

  override trailersOnly(headers: OutgoingHttpHeaders, code: number): void {
    if (this.tape && !this.isFinished) {
      this.tape.headers = fields(headers);
      this.tape.trailersOnly = true;
    }
    super.trailersOnly(headers, code);
  }

  override endWithStatus(code: number, message: string, httpStatus = 200): void {
    if (!this.isFinished) this.routerMade = true;
    super.endWithStatus(code, message, httpStatus);
  }

  /**
   * The complete response the client was given, or undefined when there is none to share: still
   * open, the client went away, the body outgrew the limit, or the router ended it for reasons of this
   * call alone (its deadline, its cancellation), which other callers must not inherit.
   */
  captured(): Answer | undefined {
    const t = this.tape;
    const code = this.code;
    if (!t?.headers || code === undefined || t.overflow) return undefined;
    if (this.routerMade && (code === Status.CANCELLED || code === Status.DEADLINE_EXCEEDED)) return undefined;
    if (!t.trailersOnly && !t.trailers) return undefined;
    return {
      code,
      response: {
        headers: t.headers,
        body: t.body.length === 1 ? (t.body[0] as Buffer) : Buffer.concat(t.body),
        trailers: t.trailers ?? {},
        ...(t.trailersOnly ? { trailersOnly: true } : {}),
      },
    };
  }
}

/** Gives a stored or shared answer to the client: same headers, body bytes and trailers. */
export function serveAnswer(down: Downstream, answer: Answer): void {
  const r = answer.response;
  if (r.trailersOnly) return down.trailersOnly({ ...r.headers, ':status': 200 }, answer.code);
  down.sendHeaders(r.headers);
  if (r.body.length > 0 && !down.gone) down.stream.write(r.body);
  down.endWithTrailers(r.trailers, answer.code);
}

/** Header fields without pseudo-headers, every value a string or list of strings. */
function fields(h: OutgoingHttpHeaders): HeaderFields {
  const out: HeaderFields = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */) continue;
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}
