import {
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import { FrameScanner } from '../grpc/framing.js';
import { ORCA_TRAILER, decodeOrcaTrailer, type OrcaReport } from '../grpc/orca.js';
import { Status, decodeGrpcMessage, statusFromHttp, statusFromRstCode, statusName } from '../grpc/status.js';
import type { Downstream } from './downstream.js';
import { downstreamHeaders, headerValue } from './headers.js';
import type { Writable } from 'node:stream';
import type { SessionPool } from './session-pool.js';

/**
 * One attempt of a call on one endpoint: open a stream, send the request body, and pass the response
 * through (headers, body with backpressure, trailers). An attempt that fails before any response
 * reached the client is handed back undelivered, with what to send if no retry follows, so the
 * pipeline may try another endpoint; once response headers went out, the outcome is final.
 */
export interface AttemptResult {
  code: number;
  message: string;
  /** The client has seen response headers or the final status: nothing can be retried. */
  delivered: boolean;
  /** Whether the upstream application may have seen the call (false: safe to send elsewhere). */
  reachedServer: boolean;
  /** For an undelivered result: gives the client this outcome. */
  deliver(): void;
  /**
   * This attempt's response came after another attempt (a hedge) had claimed the client's stream: it
   * was cancelled, and the other attempt's result is the call's.
   */
  lostRace?: boolean;
  /** The ORCA load report of the response's trailers (or Trailers-Only headers), when it had one. */
  load?: OrcaReport;
  /** The try's own deadline (try-timer.ts) cancelled it, not the call's deadline or the client. */
  expired?: boolean;
  /**
   * The router cut the attempt before its answer, and not as the call's failure (a hedge race lost,
   * the try's own deadline, the client gone): its latency is a lower bound (CallOutcome.censored).
   */
  censored?: boolean;
}

/** Where an attempt's request bytes come from: the live body, or a replay of a complete one (a hedge). */
export interface BodySource {
  attach(sink: Writable): void;
  detach(): void;
}

export interface AttemptContext {
  down: Downstream;
  body: BodySource;
  log: Logger;
  maxMessageBytes: number;
  /** Read ORCA load reports from the response (the pool's telemetry.orca). */
  readLoad: boolean;
}

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = constants;

function grpcStatusOf(h: IncomingHttpHeaders): number | undefined {
  const v = headerValue(h, 'grpc-status');
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : Status.UNKNOWN;
}

/** The decoded grpc-message, '' when absent (most calls: no decoding then). */
function messageOf(h: IncomingHttpHeaders): string {
  const m = headerValue(h, 'grpc-message');
  return m ? decodeGrpcMessage(m) : '';
}

export function isGrpcContentType(ct: string | undefined): boolean {
  return ct !== undefined && /^application\/grpc($|[+;])/.test(ct);
}

/**
 * The attempt's upstream stream events are its methods (onResponse, onData, onTrailers, onEnd, onClose);
 * `finish` settles the attempt once.
 */
export class Attempt {
  private up: ClientHttp2Stream | undefined;
  private session: ClientHttp2Session | undefined;
  private cancelled: { code: number; message: string; censored: boolean } | undefined;
  private lostRace = false;
  private settled = false;
  private responded = false;
  private trailers: IncomingHttpHeaders | undefined;
  private endedWithoutStatus = false;
  private load: OrcaReport | undefined;
  private readonly scanner: FrameScanner;
  private resolve: (r: AttemptResult) => void = () => undefined;

  constructor(
    private readonly ctx: AttemptContext,
    readonly endpoint: string,
  ) {
    this.scanner = new FrameScanner(ctx.maxMessageBytes);
  }

  /**
   * Stops the attempt (deadline, client gone, hedge lost): the upstream stream is reset with CANCEL.
   * `censored`: the router cuts it short for a reason that is not the call's failure (a hedge race
   * lost, the try's own deadline, the client gone), so its latency is a lower bound (AttemptResult).
   */
  cancel(code: number, message: string, censored = false): void {
    this.cancelled ??= { code, message, censored };
    if (this.up && !this.up.destroyed) this.up.close(NGHTTP2_CANCEL);
  }

  async run(sessions: SessionPool, headers: OutgoingHttpHeaders): Promise<AttemptResult> {
    let up: ClientHttp2Stream;
    try {
      up = sessions.tryOpenStream(headers) ?? (await sessions.openStream(headers));
    } catch (e) {
      const message = `upstream ${this.endpoint} unavailable: ${errorMessage(e)}`;
      return this.undelivered(Status.UNAVAILABLE, message, false);
    }
    if (this.cancelled) {
      up.close(NGHTTP2_CANCEL);
      const { code, message, censored } = this.cancelled;
      return {
        ...this.undelivered(code, message, false),
        delivered: this.ctx.down.isFinished,
        ...(censored ? { censored } : {}),
      };
    }
    this.up = up;
    this.session = up.session as ClientHttp2Session | undefined;
    this.ctx.body.attach(up);
    return new Promise<AttemptResult>((resolve) => {
      this.resolve = resolve;
      up.on('response', (h, flags) => this.onResponse(h, flags));
      up.on('data', (chunk: Buffer) => this.onData(chunk));
      up.on('trailers', (t) => this.onTrailers(t));
      up.on('end', () => this.onEnd());
      up.on('error', (e) =>
        this.ctx.log.debug({ endpoint: this.endpoint, err: e.message }, 'upstream stream error'),
      );
      up.once('close', () => this.onClose());
    });
  }

  private onResponse(h: IncomingHttpHeaders, flags: number): void {
    const { down } = this.ctx;
    this.responded = true;
    const httpStatus = Number(h[':status']);
    const code = grpcStatusOf(h);
    if (flags & NGHTTP2_FLAG_END_STREAM) {
      this.readLoad(h);
      // Trailers-Only: held back, so the pipeline may still retry; passed on as it came.
      const final = code ?? statusFromHttp(httpStatus);
      const out: OutgoingHttpHeaders = {
        ...downstreamHeaders(h),
        ':status': 200,
        'grpc-status': String(final),
      };
      out['content-type'] ??= 'application/grpc';
      return this.finish({
        code: final,
        message: messageOf(h),
        delivered: false,
        reachedServer: true,
        deliver: () => down.claim(this) && down.trailersOnly(out, final),
      });
    }
    if (httpStatus !== 200 || !isGrpcContentType(headerValue(h, 'content-type'))) {
      const c = httpStatus === 200 ? Status.UNKNOWN : statusFromHttp(httpStatus);
      this.up?.close(NGHTTP2_CANCEL);
      const ct = headerValue(h, 'content-type') ?? 'none';
      const message = `upstream ${this.endpoint} answered HTTP ${httpStatus} (content-type ${ct})`;
      return this.finish(this.undelivered(c, message, true));
    }
    // Another attempt (a hedge) answered first: this one lost the race and is cancelled; nothing
    // more of its response may reach the client (the winner owns the stream).
    if (!down.claim(this)) {
      this.lostRace = true;
      return this.cancel(Status.CANCELLED, `attempt on ${this.endpoint} lost to a hedge`, true);
    }
    down.sendHeaders(downstreamHeaders(h));
  }

  private onData(chunk: Buffer): void {
    const { down } = this.ctx;
    if (this.settled || down.gone || this.lostRace) return;
    const err = this.scanner.feed(chunk);
    if (err) {
      const c = err.kind === 'too-large' ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL;
      this.cancel(c, `response from ${this.endpoint}: ${err.message}`);
      down.endWithStatus(c, `response: ${err.message}`);
      return this.finish(this.delivered(c, err.message));
    }
    if (!down.stream.write(chunk)) {
      const up = this.up as ClientHttp2Stream;
      up.pause();
      down.stream.once('drain', () => up.resume());
    }
  }

  private onTrailers(t: IncomingHttpHeaders): void {
    this.trailers = t;
    this.readLoad(t);
  }

  private onEnd(): void {
    if (this.settled || this.lostRace) return;
    const code = this.trailers ? grpcStatusOf(this.trailers) : undefined;
    // No status: a reset stream also ends this way; 'close' tells the two apart by its code.
    if (!this.trailers || code === undefined) return void (this.endedWithoutStatus = true);
    this.ctx.down.endWithTrailers(downstreamHeaders(this.trailers), code);
    this.finish(this.delivered(code, messageOf(this.trailers)));
  }

  private onClose(): void {
    if (this.settled) return;
    const { down } = this.ctx;
    if (this.cancelled) {
      const { code, message, censored } = this.cancelled;
      return this.finish({
        ...this.undelivered(code, message, true),
        delivered: down.isCommitted || down.isFinished,
        ...(this.lostRace ? { lostRace: true } : {}),
        ...(censored ? { censored } : {}),
      });
    }
    const rst = this.up?.rstCode ?? NGHTTP2_NO_ERROR;
    const lost = this.session?.destroyed === true || this.session?.closed === true;
    let code: number;
    let message: string;
    if (lost) {
      code = Status.UNAVAILABLE;
      message = `connection to upstream ${this.endpoint} lost`;
    } else if (rst === NGHTTP2_NO_ERROR && this.endedWithoutStatus) {
      code = Status.INTERNAL;
      message = `upstream ${this.endpoint} ended the response without grpc-status`;
    } else {
      code = rst === NGHTTP2_NO_ERROR ? Status.INTERNAL : statusFromRstCode(rst);
      message = `upstream ${this.endpoint} reset the stream (HTTP/2 error ${rst}, ${statusName(code)})`;
    }
    if (!this.responded) return this.finish(this.undelivered(code, message, rst !== NGHTTP2_REFUSED_STREAM));
    down.endWithStatus(code, message);
    this.finish(this.delivered(code, message));
  }

  private finish(r: AttemptResult): void {
    if (this.settled) return;
    this.settled = true;
    this.ctx.body.detach();
    // The response is complete; a request side still open (the client was still sending) is reset.
    // Not otherwise: a RST_STREAM after every call looks like HTTP/2 "rapid reset" to the backend's
    // nghttp2, which answers a burst of them with GOAWAY (ENHANCE_YOUR_CALM).
    const up = this.up;
    if (up && !up.writableEnded && !up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
    this.resolve(this.load ? { ...r, load: this.load } : r);
  }

  private readLoad(h: IncomingHttpHeaders): void {
    if (!this.ctx.readLoad || h[ORCA_TRAILER] === undefined) return;
    const r = decodeOrcaTrailer(h[ORCA_TRAILER]);
    if (r) this.load = r;
    else this.ctx.log.debug({ endpoint: this.endpoint }, 'malformed ORCA load report ignored');
  }

  private undelivered(code: number, message: string, reachedServer: boolean): AttemptResult {
    const down = this.ctx.down;
    return {
      code,
      message,
      delivered: false,
      reachedServer,
      deliver: () => down.endWithStatus(code, message),
    };
  }

  private delivered(code: number, message: string): AttemptResult {
    return { code, message, delivered: true, reachedServer: true, deliver: () => undefined };
  }
}
