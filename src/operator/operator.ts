import { hostname } from 'node:os';
import type { Server } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { EventRecorder } from '../kube/events.js';
import type { Informer } from '../kube/informer.js';
import { LeaderElector } from '../kube/leader.js';
import {
  podInformer,
  poolInformer,
  serviceInformer,
  sliceInformer,
  tierInformer,
} from '../kube/resources.js';
import { objectKey } from '../kube/store.js';
import { WorkQueue, type ReconcileResult } from '../kube/workqueue.js';
import { systemClock, systemRandom } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { OperatorContext } from './context.js';
import { startHttp } from './http.js';
import { OperatorMetrics } from './metrics.js';
import { reconcilePool, type PoolFiguresSource } from './pool-reconciler.js';
import { StatusWriter } from './status-writer.js';
import { ControlPlane, type ControlOptions } from './control-plane.js';
import { TierReconciler } from './tier-reconciler.js';
import { PoolCacheConfigs } from './cache-config.js';
import { RedisAdmin } from './cache-redis.js';

export interface OperatorOptions {
  kc: KubeConfig;
  log: Logger;
  namespace?: string; // watch one namespace, or all
  statusIntervalMs?: number; // at most one status write per object per interval (default 5 s)
  concurrency?: number; // reconciles at once per kind (default 4)
  resyncMs?: number; // enqueue everything this often (default 5 min)
  relistMs?: number;
  leaderElection?: {
    namespace: string;
    name?: string;
    identity?: string;
    leaseDurationMs?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
  };
  metricsAddr?: string;
  figures?: PoolFiguresSource;
  /** Serve the control API to routers (absent: status only). */
  control?: ControlOptions;
  /** CacheTier housekeeping (defaults: probe Redis every 10 s, 2 s timeout, give up cleanup after 5 min). */
  cache?: { probeEveryMs?: number; redisTimeoutMs?: number; cleanupTimeoutMs?: number };
}

/**
 * `sibyl operator`: informers on BackendPool, CacheTier, Service, EndpointSlice and Pod feed two work
 * queues; only the leader reconciles. Informers run on standbys too, so a takeover starts warm.
 */
export class Operator {
  readonly metrics = new OperatorMetrics();
  readonly ctx: OperatorContext;
  private poolQueue?: WorkQueue;
  private tierQueue?: WorkQueue;
  private elector?: LeaderElector;
  private http?: Server;
  private resyncTimer?: NodeJS.Timeout;
  metricsPort?: number;
  readonly control?: ControlPlane;
  controlPort?: number;
  /** Reconciles in flight, for tests that check nothing runs twice at once across replicas. */
  reconciling = 0;
  /** Each pool's cache config from its CacheTier, as routers receive it. */
  readonly cacheConfigs = new PoolCacheConfigs();
  readonly redis: RedisAdmin;
  private readonly tierReconciler: TierReconciler;

  constructor(private readonly o: OperatorOptions) {
    const settings = {
      log: o.log,
      ...(o.namespace ? { namespace: o.namespace } : {}),
      ...(o.relistMs ? { relistMs: o.relistMs } : {}),
      onRestart: (informer: string, reason: string) =>
        this.metrics.informerRestarts.inc({ informer, reason }),
    };
    const interval = o.statusIntervalMs ?? 5000;
    this.ctx = {
      pools: poolInformer(o.kc, settings),
      tiers: tierInformer(o.kc, settings),
      services: serviceInformer(o.kc, settings),
      slices: sliceInformer(o.kc, settings),
      pods: podInformer(o.kc, settings),
      events: new EventRecorder(o.kc, 'sibyl-operator', o.log),
      poolStatus: new StatusWriter(o.kc, 'backendpools', interval, systemClock),
      tierStatus: new StatusWriter(o.kc, 'cachetiers', interval, systemClock),
      metrics: this.metrics,
      clock: systemClock,
      wallClock: () => new Date(),
      log: o.log,
    };
    if (o.control) {
      this.control = new ControlPlane(
        o.kc,
        o.control,
        this.ctx,
        () => this.isLeader && this.synced,
        (k) => this.enqueuePool(k),
        o.log,
        this.metrics.registry,
      );
    }
    this.redis = new RedisAdmin({
      clock: systemClock,
      log: o.log,
      ...(o.cache?.probeEveryMs ? { probeEveryMs: o.cache.probeEveryMs } : {}),
      ...(o.cache?.redisTimeoutMs ? { timeoutMs: o.cache.redisTimeoutMs } : {}),
      onChange: () => {
        for (const k of this.ctx.tiers.store.keys()) this.tierQueue?.add(k);
      },
    });
    const control = this.control;
    if (control) control.fleet.cacheFor = (pool) => this.cacheConfigs.get(pool);
    this.tierReconciler = new TierReconciler(this.ctx, {
      kc: o.kc,
      redis: this.redis,
      configs: this.cacheConfigs,
      enqueuePool: (k) => this.enqueuePool(k),
      ...(control ? { figures: (pools) => control.caches.figures(pools, systemClock.now()) } : {}),
      refreshMs: Math.max(1000, interval),
      ...(o.cache?.cleanupTimeoutMs ? { cleanupTimeoutMs: o.cache.cleanupTimeoutMs } : {}),
    });
    this.wire();
  }

  private figures(): PoolFiguresSource | undefined {
    const c = this.control;
    if (!c) return this.o.figures;
    return {
      figures: (ns, n) => c.fleet.figures(ns, n),
      routers: (ns, n) => c.fleet.routers(ns, n),
      policyInForce: (ns, n) => c.fleet.policyInForce(ns, n),
      publish: (k, p, r) => c.fleet.publish(k, p, r),
      refreshMs: (p) => c.refreshMs(p),
      model: () => c.model.status,
      anomalies: (k) => c.fleet.anomalyMonitor.activeAnomalies(k),
    };
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.poolQueue !== undefined;
  }

  /** Leader-election rounds this replica has finished (0 without election), for tests. */
  get electionRounds(): number {
    return this.elector?.rounds ?? 0;
  }

  private informers(): Informer<never>[] {
    const c = this.ctx;
    return [c.pools, c.tiers, c.services, c.slices, c.pods] as unknown as Informer<never>[];
  }

  get synced(): boolean {
    return this.informers().every((i) => i.hasSynced);
  }

  async start(): Promise<void> {
    for (const i of this.informers()) i.start();
    if (this.control) this.controlPort = await this.control.start();
    if (this.o.metricsAddr !== undefined) {
      // Ready = caches synced and leading (a standby's control API refuses routers).
      const ready = () => this.synced && (this.isLeader || !this.control);
      const h = await startHttp(this.o.metricsAddr, this.metrics.registry, ready, this.o.log);
      this.http = h.server;
      this.metricsPort = h.port;
    }
    await Promise.all(this.informers().map((i) => i.waitForSync()));
    const le = this.o.leaderElection;
    if (!le) return this.startLeading();
    this.elector = new LeaderElector(this.o.kc, {
      namespace: le.namespace,
      name: le.name ?? 'sibyl-operator',
      identity: le.identity ?? `${hostname()}-${process.pid}-${Math.floor(systemRandom() * 1e6)}`,
      ...(le.leaseDurationMs ? { leaseDurationMs: le.leaseDurationMs } : {}),
      ...(le.renewDeadlineMs ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
      ...(le.retryPeriodMs ? { retryPeriodMs: le.retryPeriodMs } : {}),
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => this.stopLeading(),
      log: this.o.log,
    });
    this.elector.start();
  }

  /** Stops; `release: false` leaves the Lease to expire, as a crashed process would. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (opts.release === false) this.elector?.abandon();
    else await this.elector?.release();
    this.stopLeading();
    await this.control?.stop();
    await this.redis.close();
    for (const i of this.informers()) i.stop();
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
  }

  private queue(kind: string, fn: (key: string) => Promise<ReconcileResult>): WorkQueue {
    return new WorkQueue(
      async (key) => {
        const end = this.metrics.reconcileDuration.startTimer({ kind });
        this.reconciling++;
        try {
          return await fn(key);
        } finally {
          this.reconciling--;
          end();
        }
      },
      {
        concurrency: this.o.concurrency ?? 4,
        random: systemRandom,
        onDepth: (d) => this.metrics.queueDepth.set({ kind }, d),
      },
      (key, e, retryInMs) => {
        this.metrics.reconcileErrors.inc({ kind });
        this.o.log.warn(
          { kind, object: key, err: errorMessage(e), retryInMs: Math.round(retryInMs) },
          'reconcile failed',
        );
      },
    );
  }

  private startLeading(): void {
    this.metrics.leader.set(1);
    const figures = this.figures();
    // Pools wait (10 s at most) for each CacheTier's first reconcile, so a pool's first routing entry
    // already carries its cache: an entry without one would make routers drop their L1 on failover.
    const pending = new Set(this.ctx.tiers.store.keys());
    let release = () => {};
    const tiersPrimed = new Promise<void>((r) => (release = r));
    const timer = setTimeout(() => release(), 10_000);
    timer.unref();
    const primed = () => {
      clearTimeout(timer);
      release();
    };
    const tierDone = (k: string) => {
      if (pending.delete(k) && pending.size === 0) primed();
    };
    if (pending.size === 0) primed();
    this.poolQueue = this.queue('BackendPool', async (k) => {
      await tiersPrimed;
      return reconcilePool(this.ctx, k, figures);
    });
    this.tierQueue = this.queue('CacheTier', async (k) => {
      try {
        return await this.tierReconciler.reconcile(k);
      } finally {
        tierDone(k);
      }
    });
    this.resyncAll();
    this.resyncTimer = setInterval(() => this.resyncAll(), this.o.resyncMs ?? 5 * 60_000);
  }

  private stopLeading(): void {
    this.metrics.leader.set(0);
    clearInterval(this.resyncTimer);
    this.poolQueue?.stop();
    this.tierQueue?.stop();
    this.poolQueue = this.tierQueue = undefined;
  }

  /** Enqueue a pool by key (the control stream and telemetry call this when figures change). */
  enqueuePool(key: string): void {
    this.poolQueue?.add(key);
  }

  private resyncAll(): void {
    for (const k of this.ctx.pools.store.keys()) this.poolQueue?.add(k);
    for (const k of this.ctx.tiers.store.keys()) this.tierQueue?.add(k);
    this.redis.closeIdle();
  }

  /** Event handlers map every change to the objects whose status depends on it. */
  private wire(): void {
    const c = this.ctx;
    const pools = (index: string, value: string) => {
      for (const p of c.pools.store.byIndex(index, value)) this.poolQueue?.add(objectKey(p));
    };
    const tiersIn = (ns: string | undefined) => {
      for (const t of c.tiers.store.list())
        if (t.metadata.namespace === ns) this.tierQueue?.add(objectKey(t));
    };
    c.pools.on({
      add: (p) => (this.poolQueue?.add(objectKey(p)), tiersIn(p.metadata.namespace)),
      update: (p, old) => {
        const meta = (x: typeof p) =>
          JSON.stringify([x.metadata.generation, x.metadata.labels, x.metadata.deletionTimestamp]);
        if (meta(p) !== meta(old)) this.poolQueue?.add(objectKey(p));
        // Labels (poolSelector) and cacheTierRef (a spec change) decide which tier serves the pool.
        if (meta(p) !== meta(old)) tiersIn(p.metadata.namespace);
      },
      delete: (p) => (this.poolQueue?.add(objectKey(p)), tiersIn(p.metadata.namespace)),
    });
    const tierChanged = (t: { metadata: { namespace?: string; name: string } }) => {
      this.tierQueue?.add(objectKey(t as never));
      pools('tier', `${t.metadata.namespace}/${t.metadata.name}`);
    };
    c.tiers.on({
      add: (t) => (tierChanged(t), tiersIn(t.metadata.namespace)),
      update: (t, old) => {
        // Spec, the flush annotation, deletion and finalizers (cleanup) all need a reconcile.
        const meta = (x: typeof t) =>
          JSON.stringify([
            x.metadata.generation,
            x.metadata.annotations?.['sibyl.dev/flush'],
            x.metadata.deletionTimestamp,
            x.metadata.finalizers,
          ]);
        if (meta(t) !== meta(old)) tierChanged(t);
        // A tier's rival for a pool may be waiting on this one (creation order decides conflicts).
        if (t.metadata.generation !== old.metadata.generation) tiersIn(t.metadata.namespace);
      },
      delete: (t) => (tierChanged(t), tiersIn(t.metadata.namespace)),
    });
    const bySvc = (ns: string | undefined, svc: string | undefined) =>
      svc && pools('service', `${ns}/${svc}`);
    c.services.on({
      add: (s) => bySvc(s.metadata?.namespace, s.metadata?.name),
      update: (s) => bySvc(s.metadata?.namespace, s.metadata?.name),
      delete: (s) => bySvc(s.metadata?.namespace, s.metadata?.name),
    });
    const slice = (es: { metadata?: { namespace?: string; labels?: Record<string, string> } }) =>
      bySvc(es.metadata?.namespace, es.metadata?.labels?.['kubernetes.io/service-name']);
    c.slices.on({ add: slice, update: slice, delete: slice });
  }
}
