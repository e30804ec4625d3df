import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { AnomalyMonitor, type AnomalyTransition } from '../anomaly/monitor.js';
import { RouterAuthenticator, kubeTokenReviewer, type TokenReviewer } from '../control/auth.js';
import type { LoadReport } from '../control/messages.js';
import { RoutingState } from '../control/routing-state.js';
import { ControlServer, DEFAULT_REPORT_INTERVAL_MS } from '../control/server.js';
import { createResourceCollector, type ResourceCollector } from '../telemetry/collector.js';
import { FleetBreakers, FleetTelemetry, type FleetBreakerTransition } from '../telemetry/fleet.js';
import { MethodLatencies } from '../telemetry/method-latency.js';
import { systemTimers } from '../util/timers.js';
import { AnomalyObserver } from './anomaly-observer.js';
import { CacheView } from './cache-view.js';
import { involved, type OperatorContext, type PoolObject } from './context.js';
import type { KeyChannel } from './controller.js';
import { FleetView } from './fleet-view.js';
import { ModelManager } from './model-manager.js';
import { PoolBreakers } from './pool-breakers.js';
import { RefitSchedule } from './refit-schedule.js';
import { RouterPublisher } from './router-publisher.js';
import { TelemetryIntake } from './telemetry-intake.js';
import type { PoolCacheEntry } from './wire-pool.js';
import type { ResourceMutator } from '../xds/resources.js';
import { XdsServer } from '../xds/server.js';
import type { DataPlaneFacts } from './data-plane-status.js';
import { DataPlanes } from './data-planes.js';
import { XdsPublisher } from './xds-publisher.js';

const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/latency', import.meta.url));
/** The fleet telemetry's window (FleetTelemetry's default), also the span a pool's offered load is counted over. */
const TELEMETRY_WINDOW_MS = 30_000;

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
  /** Tests only: change xDS resources before they are encoded, so a client refuses one. */
  xdsMutate?: ResourceMutator;
}

export interface ControlPlaneDeps {
  kc: KubeConfig;
  options: ControlOptions;
  ctx: OperatorContext;
  /** Only the leader serves routers, once its caches are synced. */
  serving: () => boolean;
  /** Pools to reconcile again: their figures changed (a report, the routers, a refit). */
  poolKeys: KeyChannel;
  /** The cache config of the CacheTier serving a pool, for its routing entry. */
  cacheFor: (pool: string) => PoolCacheEntry | undefined;
  log: Logger;
  registry: Registry;
}

/**
 * The operator's data-plane side, made here with every part's dependencies: the routing world
 * (RoutingState) and its publisher, the control API routers subscribe to, the fleet's telemetry and
 * what is made of it (FleetView), the latency model and its refits, and the routers' cache counters.
 */
export class ControlPlane {
  readonly routing = new RoutingState();
  readonly model: ModelManager;
  /** The routers' cache counters, for CacheTier status. */
  readonly caches = new CacheView();
  readonly server: ControlServer;
  /** ADS for Envoy and proxyless gRPC clients, on the control API's server (same port, TLS and auth). */
  readonly xds: XdsServer;
  readonly fleet: FleetView;
  /** Turns each pool's view into its entry in `routing`. */
  readonly publisher: RouterPublisher;
  /** Turns each pool's view into its xDS resources. */
  readonly xdsPublisher: XdsPublisher;
  /** The xDS clients' refusals and acknowledgements, per pool, for status and events. */
  readonly dataPlanes: DataPlanes;
  private readonly resources: ResourceCollector;
  private readonly refits: RefitSchedule;

  constructor(private readonly d: ControlPlaneDeps) {
    const { ctx, options: o, log, registry, poolKeys } = d;
    const clock = ctx.clock;
    this.model = new ModelManager(this.routing, log, registry);
    const telemetry = new FleetTelemetry(clock, TELEMETRY_WINDOW_MS);
    const methods = new MethodLatencies(TELEMETRY_WINDOW_MS);
    const intake = new TelemetryIntake({
      telemetry,
      methods,
      caches: this.caches,
      addSamples: (s) => this.model.addSamples(s),
      changed: (pool) => poolKeys.send(pool),
      clock,
    });
    const auth = new RouterAuthenticator(o.reviewer ?? kubeTokenReviewer(d.kc), o.allowedRouters, clock);
    const pushInterval = o.pushIntervalMs !== undefined ? { pushIntervalMs: o.pushIntervalMs } : {};
    this.server = new ControlServer({
      state: this.routing,
      auth,
      clock,
      timers: systemTimers,
      log,
      ...pushInterval,
      ...(o.reportIntervalMs !== undefined ? { reportIntervalMs: o.reportIntervalMs } : {}),
      serving: d.serving,
      onLoad: (r: LoadReport) => intake.router(r),
      onRoutersChanged: () => {
        for (const k of ctx.pools.store.keys()) poolKeys.send(k);
      },
    });
    const dataPlanes = new DataPlanes({ ctx, enqueue: (k) => poolKeys.send(k) });
    this.dataPlanes = dataPlanes;
    this.xds = new XdsServer({
      auth,
      allowUnauthenticated: o.xdsAllowUnauthenticated ?? false,
      clock,
      timers: systemTimers,
      log,
      ...pushInterval,
      serving: d.serving,
      registry,
      onNack: (n) => dataPlanes.nacked(n),
      onAck: () => dataPlanes.acked(),
      onClientsChanged: () => dataPlanes.clientsChanged(this.xds.clients()),
      ...(o.xdsMutate ? { mutate: o.xdsMutate } : {}),
      accessLogs: {
        intervalMs: o.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS,
        onReport: (r) => intake.accessLogs(r),
      },
    });
    this.xds.addToServer(this.server.server);
    this.xdsPublisher = new XdsPublisher(
      this.xds,
      TELEMETRY_WINDOW_MS,
      { entry: d.cacheFor, routers: (pool) => this.server.routerAddressesFor(pool) },
      (k) => dataPlanes.forget(k),
    );
    this.resources = createResourceCollector({
      kubeConfig: d.kc,
      log,
      registry,
      onServed: (r, m) => intake.served(r, m),
      onLoad: (pool, address, load) => intake.load(pool, address, load),
    });
    this.fleet = new FleetView({
      telemetry,
      breakers: new PoolBreakers(new FleetBreakers(telemetry, clock), telemetry, breakerEvents(ctx)),
      predictor: this.model,
      resources: this.resources,
      anomalies: new AnomalyObserver({
        monitor: new AnomalyMonitor(),
        clock,
        hitRatio: (pool) => this.caches.figures([pool], clock.now())?.hitRatio?.overall,
        onTransition: anomalyEvents(ctx, registry),
      }),
      routers: (pool) => this.server.routersFor(pool),
      methods,
      clock,
    });
    this.publisher = new RouterPublisher(this.routing, d.cacheFor);
    this.refits = new RefitSchedule({
      model: this.model,
      pools: ctx.pools.store,
      events: ctx.events,
      enqueuePool: (k) => poolKeys.send(k),
      clock,
      log,
    });
  }

  /** What the xDS clients have of a pool, for its status (undefined: no xDS resources for it). */
  dataPlaneFacts(key: string): DataPlaneFacts | undefined {
    return this.dataPlanes.facts(key, this.xds.pool(key));
  }

  async start(): Promise<number> {
    const o = this.d.options;
    await this.model.loadDefault(o.modelDir ?? DEFAULT_MODEL_DIR);
    this.refits.start();
    const creds = o.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: o.tls.cert, private_key: o.tls.key }], false)
      : o.insecure
        ? grpc.ServerCredentials.createInsecure()
        : undefined;
    if (!creds)
      throw new Error(
        'the control API needs TLS (--control-cert/--control-key) or an explicit --control-insecure',
      );
    return this.server.listen(o.addr, creds);
  }

  stop(): Promise<void> {
    this.refits.stop();
    this.resources.stop();
    this.xds.close();
    return this.server.close();
  }
}

/** A fleet breaker opening is a Warning on the pool, its closing a Normal event. */
function breakerEvents(ctx: OperatorContext): (pool: PoolObject, t: FleetBreakerTransition) => void {
  return (pool, t) => {
    const reason = t.to === 'Open' ? 'BreakerOpened' : 'BreakerClosed';
    void ctx.events.record(involved(pool), t.to === 'Open' ? 'Warning' : 'Normal', reason, t.message);
  };
}

/** An anomaly raised is a Warning (and counted in sibyl_anomalies_total); cleared, a Normal event. */
function anomalyEvents(
  ctx: OperatorContext,
  registry: Registry,
): (pool: PoolObject, t: AnomalyTransition) => void {
  const raised = new Counter({
    name: 'sibyl_anomalies_total',
    help: 'Anomalies raised, by pool and reason.',
    labelNames: ['pool', 'reason'],
    registers: [registry],
  });
  return (pool, t) => {
    const key = `${pool.metadata.namespace}/${pool.metadata.name}`;
    if (t.state === 'raised') raised.inc({ pool: key, reason: t.reason });
    const message = t.state === 'raised' ? t.message : `cleared: ${t.message}`;
    void ctx.events.record(involved(pool), t.state === 'raised' ? 'Warning' : 'Normal', t.reason, message);
  };
}
