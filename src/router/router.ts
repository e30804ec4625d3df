import * as http2 from 'node:http2';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Endpoint } from '../balancer/types.js';
import type { PredictFn } from '../balancer/predictive.js';
import type { QuantileFn } from '../model/quantiles.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { SibylError, errorMessage } from '../util/errors.js';
import { systemTimers, type Timers } from '../util/timers.js';
import { formatAddress, parseListenAddress } from '../grpc/address.js';
import { createMetricsServer } from './http.js';
import { LimiterAdmission } from './admission.js';
import { RouterMetrics, type PoolSnapshot } from './metrics.js';
import { handleStream, internalCall, type PipelineEnv } from './pipeline.js';
import { PoolState, type RouterCallObserver } from './pool-state.js';
import { DEFAULT_SESSION_POOL, type SessionPoolOptions } from './session-pool.js';
import { buildTable, type RoutingTable } from './table.js';
import { CacheMetrics } from '../cache/metrics.js';
import type { CacheCounters } from '../control/messages.js';

export interface RouterOptions {
  /** host:port to serve gRPC on (h2c, or TLS with `tls`); port 0 picks one. Default 127.0.0.1:0. */
  listen?: string;
  /** host:port for /metrics, /healthz and /readyz; absent = none. */
  metricsAddr?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Largest gRPC message accepted either way (RESOURCE_EXHAUSTED beyond). Default 16 MiB. */
  maxMessageBytes?: number;
  /** Request bytes kept for a retry. Default 256 KiB. */
  retryBufferBytes?: number;
  /** A client connection with no stream open and no traffic for this long gets GOAWAY. Default 5 min. */
  idleTimeoutMs?: number;
  session?: Partial<SessionPoolOptions>;
  defaultMetrics?: boolean;
  log?: Logger;
  clock?: Clock;
  random?: Random;
  /** Hedge delays and per-try deadlines run on these; real timers when absent. */
  timers?: Timers;
}

/**
 * The router: an HTTP/2 server (node:http2, which needs no method registration, unlike grpc-js's
 * Server) that runs every incoming stream through the pipeline against the current routing table.
 */
export class Router {
  private table: RoutingTable = buildTable([], 0);
  private readonly pools = new Map<string, PoolState>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;
  readonly metrics: RouterMetrics;
  private readonly cacheMetrics: CacheMetrics;
  private readonly log: Logger;
  private readonly env: PipelineEnv;
  private readonly sessionOptions: SessionPoolOptions;

  private constructor(
    private readonly server: http2.Http2Server | http2.Http2SecureServer,
    private readonly opts: RouterOptions,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    this.log = opts.log ?? pino({ level: 'info' });
    this.sessionOptions = { ...DEFAULT_SESSION_POOL, ...opts.session };
    this.metrics = new RouterMetrics(() => this.snapshot(), { defaultMetrics: opts.defaultMetrics });
    this.cacheMetrics = new CacheMetrics(this.metrics.registry);
    this.env = {
      table: () => this.table,
      pool: (name) => this.pools.get(name),
      metrics: this.metrics,
      log: this.log,
      clock,
      timers: opts.timers ?? systemTimers,
      options: {
        maxMessageBytes: opts.maxMessageBytes ?? 16 * 1024 * 1024,
        retryBufferBytes: opts.retryBufferBytes ?? 256 * 1024,
      },
    };
  }

  private metricsServer: HttpServer | undefined;
  /** The bound gRPC address, host:port. */
  address = '';
  metricsAddress: string | undefined;

  /** Starts listening; resolves once both listeners are bound. Calls get UNIMPLEMENTED until applyTable. */
  static async start(opts: RouterOptions = {}): Promise<Router> {
    const settings: http2.Settings = { maxConcurrentStreams: 1000, maxHeaderListSize: 64 * 1024 };
    const server = opts.tls
      ? http2.createSecureServer({ cert: opts.tls.cert, key: opts.tls.key, settings, allowHTTP1: false })
      : http2.createServer({ settings });
    const router = new Router(server, opts, opts.clock ?? systemClock, opts.random ?? systemRandom);
    router.wire();
    const listen = parseListenAddress(opts.listen ?? '127.0.0.1:0');
    await listenOn(server, listen.host, listen.port, opts.listen ?? '');
    router.address = formatAddress(
      listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host,
      (server.address() as AddressInfo).port,
    );
    if (opts.metricsAddr) {
      const m = parseListenAddress(opts.metricsAddr, '--metrics-addr');
      const ms = createMetricsServer(
        router.metrics,
        () => router.table.version > 0 && !router.draining,
        router.log,
      );
      await listenOn(ms, m.host, m.port, opts.metricsAddr);
      ms.on('error', (e) => router.log.error({ err: e.message }, 'metrics listener error'));
      router.metricsServer = ms;
      router.metricsAddress = formatAddress(m.host, (ms.address() as AddressInfo).port);
    }
    return router;
  }

  /**
   * Swaps in a new routing table atomically: calls that already started keep the pool they matched;
   * pools and endpoints that left are closed once their calls finish. The file and the control stream
   * both come through here.
   */
  applyTable(table: RoutingTable): void {
    const names = new Set(table.pools.map((p) => p.name));
    for (const route of table.pools) {
      const existing = this.pools.get(route.name);
      if (existing) existing.update(route);
      else
        this.pools.set(
          route.name,
          new PoolState(route, {
            clock: this.clock,
            random: this.random,
            log: this.log,
            sessionOptions: this.sessionOptions,
            predict: this.predict,
            quantiles: () => this.quantiles,
            observer: () => this.observer,
            cacheMetrics: this.cacheMetrics,
            warmFetch: (req) => internalCall(this.env, req),
          }),
        );
    }
    for (const [name, pool] of this.pools) {
      if (names.has(name)) continue;
      this.pools.delete(name);
      pool.close();
    }
    this.table = table;
    this.log.info(
      { version: table.version, pools: table.pools.map((p) => `${p.name}(${p.endpoints.length})`) },
      'routing table applied',
    );
  }

  get currentTable(): RoutingTable {
    return this.table;
  }

  /** The endpoints of a pool as the balancer sees them (in-flight counts, last ORCA load), for status and tests. */
  poolEndpoints(name: string): readonly Endpoint[] | undefined {
    const pool = this.pools.get(name);
    return pool && [...pool.endpoints.values()].map((st) => st.ep);
  }

  /**
   * A pool's concurrency limits now: the pool's own (admission) and each endpoint's, by address (what
   * routers report to the operator as status.endpoints[].concurrencyLimit). Undefined for an unknown
   * pool; empty figures for a pool without spec.concurrency.
   */
  concurrencyLimits(name: string): { pool?: number; endpoints: Map<string, number> } | undefined {
    const st = this.pools.get(name);
    if (!st) return undefined;
    const endpoints = new Map<string, number>();
    for (const [address, e] of st.endpoints) {
      const l = e.concurrencyLimit;
      if (l !== undefined) endpoints.set(address, l);
    }
    const pool = st.admission instanceof LimiterAdmission ? st.admission.limiter.limit : undefined;
    return pool === undefined ? { endpoints } : { pool, endpoints };
  }

  /**
   * Graceful drain: stop accepting connections, send GOAWAY on every client session so no new calls
   * start, let calls in flight finish for up to graceMs, then close whatever is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.log.info({ graceMs, sessions: this.sessions.size }, 'draining');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) this.goaway(s);
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    await this.shutdownRest();
  }

  /** Closes at once: every call is reset. */
  async close(): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.destroy();
    await closed;
    await this.shutdownRest();
  }

  private async shutdownRest(): Promise<void> {
    for (const p of this.pools.values()) p.destroy();
    const ms = this.metricsServer;
    if (ms) {
      ms.closeAllConnections();
      await new Promise<void>((resolve) => ms.close(() => resolve()));
    }
  }

  /** GOAWAY (no new streams) and a graceful close; a session too broken for that is destroyed. */
  private goaway(session: http2.ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    try {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
      session.close();
    } catch (e) {
      this.log.debug({ err: errorMessage(e) }, 'could not send GOAWAY; closing the connection');
      session.destroy();
    }
  }

  private model: PredictFn | undefined;
  /** One stable function for every Predictive balancer; a new model swaps what it calls. */
  private readonly predict: PredictFn = (ep, req, f) => this.model?.(ep, req, f);

  /** Installs (or removes) the learned latency model the Predictive policy scores with. */
  setPredictor(fn: PredictFn | undefined): void {
    this.model = fn;
  }

  private quantiles: QuantileFn | undefined;

  /**
   * Installs (or removes) the learned model's per-call quantiles (src/model/quantiles.ts), which set
   * per-try deadlines (spec.timeout.predicted) and "Predicted" hedge delays (hedging.quantile).
   */
  setQuantiles(fn: QuantileFn | undefined): void {
    this.quantiles = fn;
  }

  private observer: RouterCallObserver | undefined;

  /** Watches every attempt (the control stream's load reports). */
  setObserver(observer: RouterCallObserver | undefined): void {
    this.observer = observer;
  }

  /** Each pool cache's counters per tier, for load reports (empty when no pool caches). */
  cacheCounters(): CacheCounters[] {
    return [...this.pools.values()].flatMap((p) => p.cache?.counters() ?? []);
  }

  /** A pool's cache, for status and tests. */
  poolCache(name: string): PoolState['cache'] {
    return this.pools.get(name)?.cache;
  }

  /** Each endpoint of each pool with its breaker state and concurrency limit, for load reports. */
  liveEndpoints(): Array<{ pool: string; ep: Endpoint; breaker: string; concurrencyLimit?: number }> {
    const out = [];
    for (const [pool, st] of this.pools) {
      for (const [address, e] of st.endpoints) {
        out.push({
          pool,
          ep: e.ep,
          breaker: st.gate.breakers.state(address),
          concurrencyLimit: e.concurrencyLimit,
        });
      }
    }
    return out;
  }

  private snapshot(): PoolSnapshot[] {
    return [...this.pools].map(([pool, st]) => ({
      pool,
      limit: st.admission instanceof LimiterAdmission ? st.admission.limiter.limit : undefined,
      endpoints: [...st.endpoints].map(([endpoint, e]) => ({
        endpoint,
        sessions: e.sessions.sessionCount,
        breaker: st.gate.breakers.state(endpoint),
        limit: e.concurrencyLimit,
      })),
    }));
  }

  /** Every event a hostile or broken client can cause is handled here or in the pipeline: none may throw. */
  private wire(): void {
    const s = this.server as http2.Http2Server;
    s.on('stream', (stream, headers) => {
      try {
        handleStream(this.env, stream, headers);
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, 'stream handler failed');
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    s.on('session', (session) => {
      this.sessions.add(session);
      let open = 0;
      session.on('stream', (stream: http2.ServerHttp2Stream) => {
        open++;
        stream.once('close', () => open--);
      });
      session.on('error', (e) => this.log.debug({ err: e.message }, 'client session error'));
      session.on('frameError', (type, code) => this.log.debug({ type, code }, 'client frame error'));
      session.once('close', () => this.sessions.delete(session));
      // Idle or stuck connections (a half-sent preface, a peer that went quiet) are closed, not kept forever.
      session.setTimeout(this.opts.idleTimeoutMs ?? 300_000, () => {
        if (open === 0) this.goaway(session);
      });
      if (this.draining) this.goaway(session);
    });
    s.on('sessionError', (e) => this.log.debug({ err: e.message }, 'client session error'));
    s.on('error', (e) => this.log.error({ err: e.message }, 'router listener error'));
    this.server.on('tlsClientError', (e: Error) =>
      this.log.debug({ err: e.message }, 'TLS handshake failed'),
    );
    this.server.on('unknownProtocol', (socket: import('node:net').Socket) => socket.destroy());
  }
}

function listenOn(
  server: {
    listen(port: number, host: string, cb: () => void): unknown;
    once(e: 'error', l: (e: Error) => void): unknown;
    removeListener(e: 'error', l: (e: Error) => void): unknown;
  },
  host: string,
  port: number,
  text: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) =>
      reject(new SibylError('ERR_USAGE', `cannot listen on ${text}: ${e.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}
