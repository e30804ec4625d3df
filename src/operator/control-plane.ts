import * as grpc from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { RouterAuthenticator, kubeTokenReviewer, type TokenReviewer } from '../control/auth.js';
import type { LoadReport } from '../control/messages.js';
import { RoutingState } from '../control/routing-state.js';
import { ControlServer } from '../control/server.js';
import { systemClock, type Clock } from '../util/clock.js';
import { parseDuration } from '../util/duration.js';
import { errorMessage } from '../util/errors.js';
import { Counter, type Registry } from 'prom-client';
import { ModelManager } from './model-manager.js';
import { createResourceCollector } from '../telemetry/collector.js';
import { fileURLToPath } from 'node:url';

const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/latency', import.meta.url));
import { systemTimers } from '../util/timers.js';
import { involved, type OperatorContext, type PoolObject } from './context.js';
import { FleetView } from './fleet-view.js';
import { CacheView } from './cache-view.js';
import { XdsServer } from '../xds/server.js';

export interface ControlOptions {
  /** host:port for the control API (port 0 picks one). */
  addr: string;
  /** TLS for the control API; plaintext only when explicitly asked for (local runs, tests). */
  tls?: { cert: Buffer; key: Buffer };
  insecure?: boolean;
  /** Router ServiceAccounts allowed to subscribe: "ns/name" or "ns/*". */
  allowedRouters: string[];
  pushIntervalMs?: number;
  reportIntervalMs?: number;
  reviewer?: TokenReviewer;
  /** The default latency model's folder (models/latency). */
  modelDir?: string;
  /** Serve xDS clients without a token (local plaintext runs only). */
  xdsAllowUnauthenticated?: boolean;
}

/**
 * The operator's data-plane side: the routing world (RoutingState), the fleet's telemetry and
 * breakers (FleetView, which also feeds status), and the control API routers subscribe to.
 */
export class ControlPlane {
  readonly routing = new RoutingState();
  readonly fleet: FleetView;
  readonly server: ControlServer;
  /** ADS for Envoy and proxyless gRPC clients, on the control API's server (same port, TLS and auth). */
  readonly xds: XdsServer;
  readonly ackDelays: number[] = [];
  readonly model: ModelManager;
  /** The routers' cache counters, for CacheTier status. */
  readonly caches = new CacheView();
  private readonly clock: Clock = systemClock;
  private refitTimer?: NodeJS.Timeout;
  private readonly anomalyCount: Counter;
  private lastRefit = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly o: ControlOptions,
    private readonly ctx: OperatorContext,
    serving: () => boolean,
    private readonly enqueue: (key: string) => void,
    private readonly log: Logger,
    private readonly registry: Registry,
  ) {
    this.model = new ModelManager(this.routing, log, registry);
    this.fleet = new FleetView(
      this.routing,
      this.clock,
      (pool) => this.server.routersFor(pool),
      (pool, t) => {
        const reason = t.to === 'Open' ? 'BreakerOpened' : 'BreakerClosed';
        void ctx.events.record(involved(pool), t.to === 'Open' ? 'Warning' : 'Normal', reason, t.message);
      },
    );
    this.anomalyCount = new Counter({
      name: 'sibyl_anomalies_total',
      help: 'Anomalies raised, by pool and reason.',
      labelNames: ['pool', 'reason'],
      registers: [registry],
    });
    this.fleet.hitRatio = (pool) => this.caches.figures([pool], this.clock.now())?.hitRatio?.overall;
    this.fleet.onAnomaly = (pool, t) => {
      const key = `${pool.metadata.namespace}/${pool.metadata.name}`;
      if (t.state === 'raised') this.anomalyCount.inc({ pool: key, reason: t.reason });
      const message = t.state === 'raised' ? t.message : `cleared: ${t.message}`;
      void ctx.events.record(involved(pool), t.state === 'raised' ? 'Warning' : 'Normal', t.reason, message);
    };
    const auth = new RouterAuthenticator(o.reviewer ?? kubeTokenReviewer(kc), o.allowedRouters, this.clock);
    this.server = new ControlServer({
      state: this.routing,
      auth,
      clock: this.clock,
      timers: systemTimers,
      log,
      pushIntervalMs: o.pushIntervalMs ?? 1000,
      reportIntervalMs: o.reportIntervalMs ?? 5000,
      serving,
      onLoad: (r: LoadReport) => {
        this.fleet.telemetry.ingest(r);
        this.caches.ingest(r.routerId, r.caches, this.clock.now());
        this.model.addSamples(r.samples);
        for (const pool of new Set(r.endpoints.map((e) => e.pool))) this.enqueue(pool);
      },
      onAck: (_router, _version, ms) => {
        if (ms === undefined) return;
        this.ackDelays.push(ms);
        if (this.ackDelays.length > 10_000) this.ackDelays.splice(0, 5_000);
      },
      onRoutersChanged: () => {
        for (const k of this.ctx.pools.store.keys()) this.enqueue(k);
      },
    });
    this.xds = new XdsServer({
      auth,
      allowUnauthenticated: o.xdsAllowUnauthenticated ?? false,
      clock: this.clock,
      timers: systemTimers,
      log,
      pushIntervalMs: o.pushIntervalMs ?? 1000,
      serving,
      registry,
    });
    this.xds.addToServer(this.server.server);
  }

  async start(): Promise<number> {
    await this.model.loadDefault(this.o.modelDir ?? DEFAULT_MODEL_DIR);
    this.fleet.predictor = this.model;
    this.fleet.resources = createResourceCollector({
      kubeConfig: this.kc,
      log: this.log,
      registry: this.registry,
    });
    this.refitTimer = setInterval(() => void this.maybeRefit(), 5_000);
    const creds = this.o.tls
      ? grpc.ServerCredentials.createSsl(
          null,
          [{ cert_chain: this.o.tls.cert, private_key: this.o.tls.key }],
          false,
        )
      : this.o.insecure
        ? grpc.ServerCredentials.createInsecure()
        : undefined;
    if (!creds)
      throw new Error(
        'the control API needs TLS (--control-cert/--control-key) or an explicit --control-insecure',
      );
    return this.server.listen(this.o.addr, creds);
  }

  stop(): Promise<void> {
    clearInterval(this.refitTimer);
    this.fleet.resources?.stop();
    this.xds.close();
    return this.server.close();
  }

  /**
   * Refits when the shortest retrain interval among Predictive pools has passed and the routers sent
   * enough samples; says what happened on every Predictive pool (ModelPromoted or ModelRejected).
   */
  private async maybeRefit(): Promise<void> {
    const pools = this.ctx.pools.store
      .list()
      .filter((p) => (p.spec.balancing?.policy ?? 'Predictive') === 'Predictive');
    if (pools.length === 0) return;
    const interval = Math.min(
      ...pools.map((p) => parseDuration(p.spec.balancing?.model?.retrainInterval ?? '5m')),
    );
    const minSamples = Math.min(...pools.map((p) => p.spec.balancing?.model?.minSamples ?? 1000));
    if (this.clock.now() - this.lastRefit < interval) return;
    let r;
    try {
      r = await this.model.refit(minSamples);
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'model refit failed');
      return;
    }
    if (!r) return;
    this.lastRefit = this.clock.now();
    for (const p of pools) {
      void this.ctx.events.record(
        involved(p),
        r.promoted ? 'Normal' : 'Warning',
        r.promoted ? 'ModelPromoted' : 'ModelRejected',
        r.reason,
      );
      this.enqueue(`${p.metadata.namespace}/${p.metadata.name}`);
    }
  }

  /** Figures refresh at the pool's telemetry interval while routers report. */
  refreshMs(pool: PoolObject): number {
    return parseDuration(pool.spec.telemetry?.interval ?? '10s');
  }
}
