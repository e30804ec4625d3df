import type { ServerHttp2Stream } from 'node:http2';
import type { Writable } from 'node:stream';
import { FrameScanner, type FrameError } from '../grpc/framing.js';

/**
 * The request body on its way from the client to the current upstream attempt, with backpressure:
 * when the upstream cannot take more, the client stream is paused (so HTTP/2 flow control holds the
 * client back) until it drains. While the whole body so far fits in `replayLimit`, it is also kept for
 * a retry, which then starts from the first byte on another endpoint; past the limit the kept copy is
 * dropped and the call can no longer be retried. With no upstream attached (between attempts), at
 * most `replayLimit` or 64 KiB is held before the client is paused. Framing is checked as bytes pass.
 */
export class RequestBody {
  private sink: Writable | undefined;
  private replayChunks: Buffer[] = [];
  private replayBytes = 0;
  private queue: Buffer[] = [];
  private queueBytes = 0;
  private replayable = true;
  private waitingDrain = false;
  ended = false;
  readonly scanner: FrameScanner;

  constructor(
    private readonly stream: ServerHttp2Stream,
    maxMessageBytes: number,
    private readonly replayLimit: number,
    private readonly onFrameError: (e: FrameError) => void,
  ) {
    this.scanner = new FrameScanner(maxMessageBytes);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.once('end', () => this.onEnd());
  }

  /** Whether everything received so far is kept, so another attempt can be sent in full. */
  get canReplay(): boolean {
    return this.replayable;
  }

  /** Sends the body so far, and from now on everything that arrives, to `sink`. */
  attach(sink: Writable): void {
    this.sink = sink;
    const pending = this.replayable ? this.replayChunks : this.queue;
    for (const c of pending) sink.write(c);
    this.queue = [];
    this.queueBytes = 0;
    if (this.ended) sink.end();
    this.waitingDrain = false;
    this.stream.resume();
  }

  /**
   * A second source over the same bytes, for a hedge: replays the complete body to another sink without
   * taking over the live one. Only when the body has ended and was kept whole (`canHedge`).
   */
  replay(): { attach(sink: Writable): void; detach(): void } {
    const chunks = this.replayChunks; // complete: nothing is added after the end
    return {
      attach: (sink) => {
        for (const c of chunks) sink.write(c);
        sink.end();
      },
      detach: () => undefined,
    };
  }

  get canHedge(): boolean {
    return this.ended && this.replayable;
  }

  /** The attempt is over: hold what arrives until the next attach. */
  detach(): void {
    this.sink = undefined;
  }

  private onData(chunk: Buffer): void {
    const err = this.scanner.feed(chunk);
    if (err) {
      this.stream.pause();
      this.onFrameError(err);
      return;
    }
    if (this.replayable) {
      if (this.replayBytes + chunk.length <= this.replayLimit) {
        this.replayChunks.push(chunk);
        this.replayBytes += chunk.length;
        if (!this.sink) return this.holdIfFull();
      } else {
        this.replayable = false;
        // Bytes never sent must still reach the next attach; those already sent are not needed again.
        if (!this.sink) this.enqueue(...this.replayChunks);
        this.replayChunks = [];
        this.replayBytes = 0;
      }
    }
    if (this.sink) this.write(this.sink, chunk);
    else if (!this.replayable) this.enqueue(chunk);
  }

  private write(sink: Writable, chunk: Buffer): void {
    if (sink.write(chunk) || this.waitingDrain) return;
    this.waitingDrain = true;
    this.stream.pause();
    sink.once('drain', () => {
      if (this.sink !== sink) return;
      this.waitingDrain = false;
      this.stream.resume();
    });
  }

  private enqueue(...chunks: Buffer[]): void {
    for (const c of chunks) {
      this.queue.push(c);
      this.queueBytes += c.length;
    }
    this.holdIfFull();
  }

  private holdIfFull(): void {
    if (this.replayBytes + this.queueBytes >= Math.max(this.replayLimit, 64 * 1024)) this.stream.pause();
  }

  private onEnd(): void {
    const err = this.scanner.end();
    if (err) return this.onFrameError(err);
    this.ended = true;
    this.sink?.end();
  }
}
