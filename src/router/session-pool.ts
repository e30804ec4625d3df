import * as http2 from 'node:http2';
import type { Logger } from 'pino';
import type { Clock, Random } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from '../util/backoff.js';
import { loopbackAwareLookup } from '../util/net.js';

/**
 * A small pool of HTTP/2 client sessions to one upstream endpoint. Streams go to the open session with
 * the fewest streams; another session is opened (up to maxSessions) when every one carries
 * streamsPerSession. A failed connect puts the endpoint in backoff (exponential with jitter): until
 * the delay passes, openStream fails at once so the caller can go elsewhere, and `connectable` is
 * false so the balancer can skip it. A session that receives GOAWAY takes no new streams (those in
 * flight finish) and a new one is opened on demand. Idle sessions are pinged, and closed after
 * idleTimeoutMs without streams.
 *
 * Reachability is kept up in the background, as a gRPC subchannel does (TRANSIENT_FAILURE retries
 * after its backoff by itself; a lost READY connection is re-established): when the last session is
 * lost other than by the idle timeout, or a connect fails, the pool connects again on its own once the
 * backoff has passed, until one succeeds. So a dead endpoint is found dead, and a restarted one found
 * back, without a call having to be sent there, which matters because a balancer that charges
 * failures (PeakEwma, Predictive) sends a failing endpoint no calls. Those background connects are
 * reported (SessionPoolEvents): their failures count against the endpoint's circuit breaker (as
 * Envoy's outlier detection counts connect failures as gateway failures), and a connect that succeeds
 * after failures tells the balancer the endpoint is back (gRFC A58 resets a subchannel's weight when
 * it becomes READY again).
 */
export interface SessionPoolOptions {
  maxSessions: number;
  streamsPerSession: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  backoff: BackoffOptions;
  /** TLS to the upstream (h2 over TLS) instead of h2c. */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
}

export const DEFAULT_SESSION_POOL: SessionPoolOptions = {
  maxSessions: 2,
  streamsPerSession: 100,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 300_000,
  pingIntervalMs: 30_000,
  backoff: DEFAULT_BACKOFF,
};

/** What the pool tells its owner about the endpoint's reachability. */
export interface SessionPoolEvents {
  /** A connect made in the background (no call waited on it) failed. */
  reconnectFailed(reason: string): void;
  /** A connect succeeded after one or more failed: the endpoint is reachable again. */
  reachable(): void;
}

/** Why no stream could be opened; the call never reached the upstream, so it is safe to retry. */
class ConnectError extends Error {
  readonly reachedServer = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectError';
  }
}

interface Entry {
  session: http2.ClientHttp2Session;
  ready: Promise<void>;
  connected: boolean;
  draining: boolean;
  /** Closed by the pool (idle timeout): not a loss to make good. */
  retired: boolean;
  streams: number;
  idleSince: number;
}

export class SessionPool {
  private readonly entries = new Set<Entry>();
  private readonly backoff: Backoff;
  private retryAtMs = 0;
  private lastError = '';
  /** A connect failed and none has succeeded since. */
  private failing = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly address: string,
    private readonly opts: SessionPoolOptions,
    private readonly deps: { clock: Clock; random: Random; log: Logger; events?: SessionPoolEvents },
  ) {
    this.backoff = new Backoff(opts.backoff, deps.random);
    this.timer = setInterval(() => this.sweep(), Math.min(opts.pingIntervalMs, opts.idleTimeoutMs));
    this.timer.unref();
  }

  /** False while in backoff after a failed connect. */
  get connectable(): boolean {
    return this.deps.clock.now() >= this.retryAtMs;
  }

  get sessionCount(): number {
    let n = 0;
    for (const e of this.entries) if (e.connected && !e.draining) n++;
    return n;
  }

  /**
   * A request stream at once on a connected session with room, or undefined when that would need a
   * wait (connecting, backoff, every session full) or failed: then use openStream. The common case of
   * a warm pool costs no promise.
   */
  tryOpenStream(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream | undefined {
    if (this.closed) return undefined;
    const best = this.bestConnected();
    return best && best.streams < this.opts.streamsPerSession ? this.request(best, headers) : undefined;
  }

  /** Opens a request stream on a session to this endpoint; rejects with ConnectError when none can be had. */
  async openStream(headers: http2.OutgoingHttpHeaders): Promise<http2.ClientHttp2Stream> {
    for (let tries = 0; tries < 2; tries++) {
      const stream = this.request(await this.pick(), headers);
      if (stream) return stream;
    }
    throw new ConnectError(`${this.address}: no usable HTTP/2 session`);
  }

  private request(entry: Entry, headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream | undefined {
    try {
      const stream = entry.session.request(headers, { endStream: false });
      entry.streams++;
      stream.once('close', () => {
        entry.streams--;
        if (entry.streams === 0) entry.idleSince = this.deps.clock.now();
      });
      return stream;
    } catch (e) {
      // The session went away between the pick and the request (GOAWAY, destroyed): use another.
      this.deps.log.debug({ endpoint: this.address, err: errorMessage(e) }, 'session refused a stream');
      entry.draining = true;
      return undefined;
    }
  }

  /** The connected, usable session with the fewest streams. */
  private bestConnected(): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (!e.connected || e.draining || e.session.closed || e.session.destroyed) continue;
      if (!best || e.streams < best.streams) best = e;
    }
    return best;
  }

  /** Stops taking streams; sessions close once their streams end. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    for (const e of this.entries) e.session.close();
  }

  /** Closes every session at once, resetting open streams. */
  destroy(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    for (const e of this.entries) e.session.destroy();
  }

  private async pick(): Promise<Entry> {
    if (this.closed) throw new ConnectError(`${this.address}: endpoint removed`);
    let best: Entry | undefined;
    let pending: Entry | undefined;
    let live = 0;
    for (const e of this.entries) {
      if (e.draining || e.session.closed || e.session.destroyed) continue;
      live++;
      if (!e.connected) pending ??= e;
      else if (!best || e.streams < best.streams) best = e;
    }
    if (best && best.streams < this.opts.streamsPerSession) return best;
    if (pending) {
      await pending.ready;
      return pending;
    }
    if (live < this.opts.maxSessions) {
      if (!this.connectable) {
        const wait = Math.round(this.retryAtMs - this.deps.clock.now());
        throw new ConnectError(`${this.address}: ${this.lastError} (next connect attempt in ${wait}ms)`);
      }
      const e = this.connect();
      await e.ready;
      return e;
    }
    if (best) return best;
    throw new ConnectError(`${this.address}: no usable HTTP/2 session`);
  }

  private connect(): Entry {
    const { log, clock } = this.deps;
    const authority = this.opts.tls ? `https://${this.address}` : `http://${this.address}`;
    const session = http2.connect(authority, {
      ...(this.opts.tls ?? {}),
      settings: { enablePush: false, initialWindowSize: 1 << 20 },
      lookup: loopbackAwareLookup,
    });
    let settle: (err?: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    // A rejection nobody awaits (the caller took another path) must not become an unhandled rejection.
    ready.catch(() => undefined);
    const entry: Entry = {
      session,
      ready,
      connected: false,
      draining: false,
      retired: false,
      streams: 0,
      idleSince: clock.now(),
    };
    this.entries.add(entry);
    const timeout = setTimeout(
      () => session.destroy(new Error(`connect timed out after ${this.opts.connectTimeoutMs}ms`)),
      this.opts.connectTimeoutMs,
    );
    session.once('connect', () => {
      clearTimeout(timeout);
      entry.connected = true;
      this.backoff.reset();
      this.retryAtMs = 0;
      log.debug({ endpoint: this.address }, 'upstream session connected');
      if (this.failing) {
        this.failing = false;
        this.deps.events?.reachable();
      }
      settle();
    });
    let connectError: string | undefined;
    session.on('error', (err) => {
      log.debug(
        { endpoint: this.address, err: err.message, connected: entry.connected },
        'upstream session error',
      );
      if (!entry.connected) connectError ??= err.message;
    });
    session.on('goaway', (code, lastStreamId) => {
      entry.draining = true;
      log.debug({ endpoint: this.address, code, lastStreamId }, 'upstream sent GOAWAY');
    });
    session.on('frameError', (type, code, id) =>
      log.debug({ endpoint: this.address, type, code, id }, 'upstream frame error'),
    );
    session.once('close', () => {
      clearTimeout(timeout);
      this.entries.delete(entry);
      if (!entry.connected) {
        this.failed(connectError ?? 'connection closed before HTTP/2 was set up');
        settle(new ConnectError(`${this.address}: ${this.lastError}`));
      } else if (!entry.retired) this.scheduleReconnect(0); // lost: make it good if it was the last
    });
    return entry;
  }

  private failed(reason: string): void {
    this.lastError = `connect failed: ${reason}`;
    this.failing = true;
    const delay = this.backoff.next();
    this.retryAtMs = this.deps.clock.now() + delay;
    this.scheduleReconnect(delay);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.reconnect();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** A background connect, unless the pool is closed or a session is up or on its way. */
  private reconnect(): void {
    if (this.closed) return;
    for (const e of this.entries) if (!e.draining && !e.session.closed && !e.session.destroyed) return;
    this.connect().ready.catch(() => this.deps.events?.reconnectFailed(this.lastError));
  }

  /** Pings sessions that carry no streams (finding dead peers early) and closes long-idle ones. */
  private sweep(): void {
    const now = this.deps.clock.now();
    for (const e of this.entries) {
      if (!e.connected || e.draining || e.streams > 0) continue;
      if (now - e.idleSince >= this.opts.idleTimeoutMs) {
        e.draining = true;
        e.retired = true;
        e.session.close();
        continue;
      }
      try {
        e.session.ping((err) => {
          if (err) {
            this.deps.log.debug({ endpoint: this.address, err: err.message }, 'ping failed; closing session');
            e.draining = true;
            e.session.destroy();
          }
        });
      } catch (err) {
        this.deps.log.debug({ endpoint: this.address, err: errorMessage(err) }, 'cannot ping session');
      }
    }
  }
}
