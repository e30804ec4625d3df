import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import { statusTrailers, trailersOnlyHeaders } from '../grpc/status.js';

/**
 * The client's side of one call: the response can be started once, and ends exactly once, with a
 * status. Before response headers go out, a status is sent as Trailers-Only (one HEADERS frame with
 * END_STREAM); after, as trailers. Every write checks that the client is still there; a client that
 * reset the stream makes these calls no-ops.
 */
export class Downstream {
  private committed = false;
  private finished = false;
  private trailers: OutgoingHttpHeaders | undefined;
  private owner: object | undefined;
  /** The status the client was (or will be) given; undefined until one is chosen. */
  code: number | undefined;

  constructor(
    readonly stream: ServerHttp2Stream,
    private readonly log: Logger,
  ) {}

  /** Response headers went out: a status must now come as trailers. */
  get isCommitted(): boolean {
    return this.committed;
  }
  get isFinished(): boolean {
    return this.finished || this.gone;
  }
  /** The client reset the stream or the connection went away. */
  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  /**
   * Makes `attempt` the one whose response the client gets; false when another attempt already is
   * (hedged calls race, and the first to answer wins).
   */
  claim(attempt: object): boolean {
    if (this.owner !== undefined && this.owner !== attempt) return false;
    this.owner = attempt;
    return true;
  }

  /** Starts the response; trailers follow when end() is called. */
  sendHeaders(headers: OutgoingHttpHeaders): void {
    if (this.committed || this.isFinished) return;
    this.committed = true;
    this.stream.once('wantTrailers', () => {
      this.guard('send trailers', () =>
        this.stream.sendTrailers(this.trailers ?? statusTrailers(13, 'upstream sent no status')),
      );
    });
    this.guard('send headers', () =>
      this.stream.respond({ ...headers, ':status': 200 }, { waitForTrailers: true }),
    );
  }

  /** Ends the call with trailers taken from upstream (grpc-status among them). */
  endWithTrailers(trailers: OutgoingHttpHeaders, code: number): void {
    if (this.isFinished) return;
    if (!this.committed)
      return this.trailersOnly({ ':status': 200, 'content-type': 'application/grpc', ...trailers }, code);
    this.finished = true;
    this.code = code;
    this.trailers = trailers;
    this.guard('end response', () => this.stream.end());
  }

  /** Ends the call with a status the router made. */
  endWithStatus(code: number, message: string, httpStatus = 200): void {
    if (this.isFinished) return;
    if (!this.committed) return this.trailersOnly(trailersOnlyHeaders(code, message, httpStatus), code);
    this.endWithTrailers(statusTrailers(code, message), code);
  }

  /** Passes on an upstream Trailers-Only response as it came. */
  trailersOnly(headers: OutgoingHttpHeaders, code: number): void {
    if (this.isFinished) return;
    this.finished = true;
    this.committed = true;
    this.code = code;
    this.guard('send Trailers-Only', () => this.stream.respond(headers, { endStream: true }));
  }

  /** Resets the stream (when even a status cannot be sent, e.g. headers were half-written). */
  reset(rstCode: number): void {
    this.finished = true;
    if (!this.stream.destroyed) this.stream.close(rstCode);
  }

  private guard(what: string, f: () => void): void {
    if (this.gone) return;
    try {
      f();
    } catch (e) {
      // The client went away between the check and the write; nothing is owed to it now.
      this.log.debug({ err: errorMessage(e) }, `could not ${what}`);
    }
  }
}
