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
import { systemClock, systemRandom } from '../util/clock.js';
import { systemTimers } from '../util/timers.js';
import { PoolCacheConfigs } from './cache-config.js';
import { RedisAdmin } from './cache-redis.js';
import type { OperatorContext } from './context.js';
import { ControlPlane, type ControlOptions } from './control-plane.js';
import { Controller, KeyChannel } from './controller.js';
import { KeepAliveKubeConfig } from '../kube/config.js';
import { startHttp } from './http.js';
import { OperatorMetrics } from './metrics.js';
import { PoolReconciler } from './pool-reconciler.js';
import { StatusWriter } from './status-writer.js';
import { TierGate } from './tier-gate.js';
import { TierReconciler } from './tier-reconciler.js';
import { poolWatches, tierWatches } from './watches.js';

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
  /** Serve the control API to routers (absent: status only). */
  control?: ControlOptions;
  /** CacheTier housekeeping (defaults: probe Redis every 10 s, 2 s timeout, give up cleanup after 5 min). */
  cache?: { probeEveryMs?: number; redisTimeoutMs?: number; cleanupTimeoutMs?: number };
}

/**
 * `sibyl operator`. The constructor is the composition root: it makes every part with its
 * dependencies and states each controller's watches (watches.ts). Informers on BackendPool, CacheTier,
 * Service, EndpointSlice and Pod feed two controllers; only the leader reconciles. Informers run on
 * standbys too, so a takeover starts warm.
 */
export class Operator {
  readonly metrics = new OperatorMetrics();
  metricsPort?: number;
  /** The data-plane side (absent: status only). */
  readonly control?: ControlPlane;
  controlPort?: number;
  private readonly ctx: OperatorContext;
  private readonly redis: RedisAdmin;
  private readonly pools: Controller;
  private readonly tiers: Controller;
  private readonly gate = new TierGate(systemTimers);
  private elector?: LeaderElector;
  private http?: Server;
  private resyncTimer?: NodeJS.Timeout;

  constructor(private readonly o: OperatorOptions) {
    const settings = {
      log: o.log,
      ...(o.namespace ? { namespace: o.namespace } : {}),
      ...(o.relistMs ? { relistMs: o.relistMs } : {}),
      onRestart: (informer: string, reason: string) =>
        this.metrics.informerRestarts.inc({ informer, reason }),
    };
    const interval = o.statusIntervalMs ?? 5000;
    const ctx: OperatorContext = {
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
    this.ctx = ctx;
    // Keys from outside the informers: routers' reports, refits and cache configs (pools); Redis (tiers).
    const poolKeys = new KeyChannel();
    const tierKeys = new KeyChannel();
    // Each pool's cache config from its CacheTier, as routers receive it.
    const cacheConfigs = new PoolCacheConfigs();
    this.control = o.control
      ? new ControlPlane({
          kc: o.kc,
          options: o.control,
          ctx,
          serving: () => this.isLeader && this.synced,
          poolKeys,
          cacheFor: (pool) => cacheConfigs.get(pool),
          log: o.log,
          registry: this.metrics.registry,
        })
      : undefined;
    const control = this.control;
    this.redis = new RedisAdmin({
      clock: systemClock,
      log: o.log,
      ...(o.cache?.probeEveryMs ? { probeEveryMs: o.cache.probeEveryMs } : {}),
      ...(o.cache?.redisTimeoutMs ? { timeoutMs: o.cache.redisTimeoutMs } : {}),
      onChange: () => {
        for (const k of ctx.tiers.store.keys()) tierKeys.send(k);
      },
    });
    const tierReconciler = new TierReconciler(ctx, {
      kc: o.kc,
      redis: this.redis,
      configs: cacheConfigs,
      enqueuePool: (k) => poolKeys.send(k, 'event'), // a tier's new cache config: a spec change
      ...(control ? { figures: (pools) => control.caches.figures(pools, ctx.clock.now()) } : {}),
      refreshMs: Math.max(1000, interval),
      ...(o.cache?.cleanupTimeoutMs ? { cleanupTimeoutMs: o.cache.cleanupTimeoutMs } : {}),
    });
    const poolReconciler = new PoolReconciler({
      ctx,
      ...(control ? { fleet: control.fleet } : {}),
      publishers: control ? [control.publisher, control.xdsPublisher] : [],
      ...(control ? { dataPlanes: (k: string) => control.dataPlaneFacts(k) } : {}),
    });
    const common = {
      concurrency: o.concurrency ?? 4,
      random: systemRandom,
      metrics: this.metrics,
      log: o.log,
    };
    const gate = this.gate;
    this.tiers = new Controller(
      {
        reconcile: async (k) => {
          try {
            return await tierReconciler.reconcile(k);
          } finally {
            gate.reconciled(k);
          }
        },
      },
      tierWatches(ctx, tierKeys),
      { kind: 'CacheTier', ...common },
    );
    this.pools = new Controller(
      {
        reconcile: async (k) => {
          await gate.wait();
          return poolReconciler.reconcile(k);
        },
      },
      poolWatches(ctx, poolKeys),
      { kind: 'BackendPool', ...common },
    );
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.pools.running;
  }

  /** Leader-election rounds this replica has finished (0 without election), for tests. */
  get electionRounds(): number {
    return this.elector?.rounds ?? 0;
  }

  get synced(): boolean {
    return this.informers().every((i) => i.hasSynced);
  }

  /** Reconciles in flight, for tests that check nothing runs twice at once across replicas. */
  get reconciling(): number {
    return this.pools.reconciling + this.tiers.reconciling;
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
    if (this.o.kc instanceof KeepAliveKubeConfig) this.o.kc.closeConnections();
  }

  /** Enqueue a pool by key (tests; the control stream and telemetry go through their KeyChannel). */
  enqueuePool(key: string): void {
    this.pools.enqueue(key);
  }

  private informers(): Informer<never>[] {
    const c = this.ctx;
    return [c.pools, c.tiers, c.services, c.slices, c.pods] as unknown as Informer<never>[];
  }

  private startLeading(): void {
    this.metrics.leader.set(1);
    this.gate.close(this.ctx.tiers.store.keys());
    this.pools.start();
    this.tiers.start();
    this.resyncAll();
    this.resyncTimer = setInterval(() => this.resyncAll(), this.o.resyncMs ?? 5 * 60_000);
  }

  private stopLeading(): void {
    this.metrics.leader.set(0);
    clearInterval(this.resyncTimer);
    this.pools.stop();
    this.tiers.stop();
    this.gate.open();
  }

  private resyncAll(): void {
    for (const k of this.ctx.pools.store.keys()) this.pools.enqueue(k);
    for (const k of this.ctx.tiers.store.keys()) this.tiers.enqueue(k);
    this.redis.closeIdle();
  }
}
