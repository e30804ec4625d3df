import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Backoff } from '../util/backoff.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { makeLogger } from '../util/log.js';
import { systemTimers, type TimerHandle, type Timers } from '../util/timers.js';
import { collectionsCounter, type CollectionsCounter } from './counters.js';
import { STALE_INTERVALS } from './scrape.js';
import { tryParseQuantity } from './quantity.js';
import type { ResourceEndpoint, ResourceFigures, ResourceSource, TelemetrySettings } from './resources.js';

/**
 * CPU and memory from the resource metrics API (metrics.k8s.io/v1beta1 PodMetrics, served by
 * metrics-server or any other aggregated server), for pools with spec.telemetry.metricsApi.
 *
 * Whether the API server serves the group is asked through discovery when the first pool is tracked
 * and again every discoveryIntervalMs (3 minutes by default); a list answered 404 asks again at once.
 * Without the API the source is quietly inactive: one info log when that is found, one when it
 * appears. While active, each namespace holding a tracked pod is listed every interval (the
 * shortest interval of the pools there, with a random phase and ±10% jitter), one list per
 * namespace at a time: per-namespace lists fit an operator whose RBAC is namespaced.
 *
 * A pod's CPU is the sum of its containers' usage.cpu (cores), its memory the sum of usage.memory
 * (bytes); a field any container lacks or writes unreadably is left out rather than understated.
 * Endpoints map to figures by pod name (an endpoint without one gets none). ageMs is the figures'
 * age as the metrics API states it (now − PodMetrics.timestamp, measured on the wall clock when the
 * list arrived, never below 0) plus the time since that list; figures whose list is older than
 * STALE_INTERVALS intervals are dropped, and a pod a successful list no longer has is dropped at once.
 * Failures are counted and logged (a warning when lists start failing, info when they recover),
 * never thrown to the caller.
 */

const METRICS_GROUP = 'metrics.k8s.io';
const METRICS_VERSION = 'v1beta1';

/** metrics.k8s.io/v1beta1 PodMetrics, the fields read here. */
export interface PodMetrics {
  metadata: { name?: string; namespace?: string };
  /** RFC 3339: when the usage was measured (the end of the window). */
  timestamp?: string;
  /** The averaging window, a duration such as "15s". */
  window?: string;
  containers?: Array<{ name?: string; usage?: { cpu?: string; memory?: string } }>;
}

/** What the source needs of the API server; kubePodMetricsApi is the real one. */
export interface PodMetricsApi {
  /** Whether discovery lists metrics.k8s.io/v1beta1. Rejects when the API server cannot be asked. */
  serves(): Promise<boolean>;
  /** PodMetrics of a namespace. Rejects with an error whose `code` is the HTTP status where known. */
  list(namespace: string): Promise<PodMetrics[]>;
}

/** The metrics API through @kubernetes/client-node. */
export function kubePodMetricsApi(kc: k8s.KubeConfig): PodMetricsApi {
  const apis = kc.makeApiClient(k8s.ApisApi);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  return {
    async serves() {
      const list = await apis.getAPIVersions();
      return (list.groups ?? []).some(
        (g) => g.name === METRICS_GROUP && (g.versions ?? []).some((v) => v.version === METRICS_VERSION),
      );
    },
    async list(namespace) {
      const body = (await custom.listNamespacedCustomObject({
        group: METRICS_GROUP,
        version: METRICS_VERSION,
        namespace,
        plural: 'pods',
      })) as { items?: PodMetrics[] };
      return body.items ?? [];
    },
  };
}

// ---- Pure parts -------------------------------------------------------------------------------

/** A pod's figures as read from one PodMetrics. */
export interface PodFigures {
  cpuCores?: number;
  memoryBytes?: number;
  /** How old the measurement already was when it was read, ms. */
  lagMs: number;
}

/**
 * Sums a PodMetrics' containers (CPU in cores, memory in bytes); `wallNowMs` is when it was read, on
 * the wall clock, for its lag behind `timestamp`. Undefined when the pod has no figure at all.
 */
export function podFigures(pm: PodMetrics, wallNowMs: number): PodFigures | undefined {
  const containers = pm.containers ?? [];
  if (containers.length === 0) return undefined;
  const sum = (field: 'cpu' | 'memory'): number | undefined => {
    let total = 0;
    for (const c of containers) {
      const v = tryParseQuantity(c.usage?.[field]);
      if (v === undefined || v < 0) return undefined;
      total += v;
    }
    return total;
  };
  const cpuCores = sum('cpu');
  const memoryBytes = sum('memory');
  if (cpuCores === undefined && memoryBytes === undefined) return undefined;
  const ts = pm.timestamp ? Date.parse(pm.timestamp) : NaN;
  const lagMs = Number.isFinite(ts) ? Math.max(0, wallNowMs - ts) : 0;
  const out: PodFigures = { lagMs };
  if (cpuCores !== undefined) out.cpuCores = cpuCores;
  if (memoryBytes !== undefined) out.memoryBytes = memoryBytes;
  return out;
}

/** Figures kept for a pod: what was read and when the list arrived (source clock). */
export interface HeldPodFigures extends PodFigures {
  at: number;
}

/** As a consumer sees them at `now`, or undefined once the list is STALE_INTERVALS intervals old. */
export function agedPodFigures(
  f: HeldPodFigures | undefined,
  now: number,
  intervalMs: number,
): ResourceFigures | undefined {
  if (!f) return undefined;
  const sinceList = Math.max(0, now - f.at);
  if (sinceList > STALE_INTERVALS * intervalMs) return undefined;
  const out: ResourceFigures = { source: 'metrics-api', ageMs: f.lagMs + sinceList };
  if (f.cpuCores !== undefined) out.cpuCores = f.cpuCores;
  if (f.memoryBytes !== undefined) out.memoryBytes = f.memoryBytes;
  return out;
}

// ---- The source -------------------------------------------------------------------------------

export interface PodMetricsSourceOptions {
  clock?: Clock;
  /** Wall clock, ms since the epoch, to compare with PodMetrics timestamps (default Date.now). */
  wallClock?: () => number;
  timers?: Timers;
  random?: Random;
  log?: Logger;
  /** How often to ask discovery again (default 3 minutes). */
  discoveryIntervalMs?: number;
  /** A list that takes longer is abandoned and counted as a failure (default 10 s). */
  listTimeoutMs?: number;
  registry?: Registry;
}

export type MetricsApiState = 'unknown' | 'available' | 'missing';

export interface PodMetricsStats {
  lists: number;
  failures: number;
  state: MetricsApiState;
}

interface Namespace {
  name: string;
  intervalMs: number;
  timer?: TimerHandle;
  busy: boolean;
  pods: Map<string, HeldPodFigures>;
  failures: number;
  stopped: boolean;
}

interface TrackedPool {
  intervalMs: number;
  endpoints: readonly ResourceEndpoint[];
}

export class PodMetricsSource implements ResourceSource {
  private readonly clock: Clock;
  private readonly wallClock: () => number;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly discoveryIntervalMs: number;
  private readonly listTimeoutMs: number;
  private readonly counter?: CollectionsCounter;
  private readonly backoff: Backoff;
  private readonly pools = new Map<string, TrackedPool>();
  private readonly namespaces = new Map<string, Namespace>();
  private state: MetricsApiState = 'unknown';
  private discoveryTimer?: TimerHandle;
  private discovering = false;
  private stopped = false;
  private readonly counts = { lists: 0, failures: 0 };

  constructor(
    private readonly api: PodMetricsApi,
    opts: PodMetricsSourceOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.wallClock = opts.wallClock ?? Date.now;
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? systemRandom;
    this.log = opts.log ?? makeLogger('telemetry-metrics-api');
    this.discoveryIntervalMs = opts.discoveryIntervalMs ?? 180_000;
    this.listTimeoutMs = opts.listTimeoutMs ?? 10_000;
    if (opts.registry) this.counter = collectionsCounter(opts.registry);
    this.backoff = new Backoff({ initialMs: 1000, maxMs: 30_000, multiplier: 2, jitter: 0.2 }, this.random);
  }

  /** Whether metrics.k8s.io is served, as last found ('unknown' before the first answer). */
  get apiState(): MetricsApiState {
    return this.state;
  }

  track(poolKey: string, endpoints: readonly ResourceEndpoint[], settings: TelemetrySettings): void {
    if (this.stopped) return;
    if (!settings.metricsApi) {
      this.untrack(poolKey);
      return;
    }
    this.pools.set(poolKey, { intervalMs: Math.max(1, settings.intervalMs), endpoints: [...endpoints] });
    this.syncNamespaces();
    if (this.discoveryTimer === undefined && !this.discovering) this.discoverSoon(0);
  }

  untrack(poolKey: string): void {
    if (!this.pools.delete(poolKey)) return;
    this.syncNamespaces();
    if (this.pools.size === 0 && this.discoveryTimer !== undefined) {
      this.timers.clearTimeout(this.discoveryTimer);
      this.discoveryTimer = undefined;
    }
  }

  figures(poolKey: string): ReadonlyMap<string, ResourceFigures> {
    const out = new Map<string, ResourceFigures>();
    const pool = this.pools.get(poolKey);
    if (!pool) return out;
    const now = this.clock.now();
    for (const ep of pool.endpoints) {
      if (!ep.pod) continue;
      const f = agedPodFigures(this.namespaces.get(ep.namespace)?.pods.get(ep.pod), now, pool.intervalMs);
      if (f) out.set(ep.address, f);
    }
    return out;
  }

  stats(): PodMetricsStats {
    return { ...this.counts, state: this.state };
  }

  stop(): void {
    this.stopped = true;
    this.pools.clear();
    this.syncNamespaces();
    if (this.discoveryTimer !== undefined) this.timers.clearTimeout(this.discoveryTimer);
    this.discoveryTimer = undefined;
  }

  /** Namespaces follow the tracked pools: each listed at the shortest interval among its pools. */
  private syncNamespaces(): void {
    const wanted = new Map<string, number>();
    for (const p of this.pools.values()) {
      for (const ep of p.endpoints) {
        if (!ep.pod) continue;
        wanted.set(ep.namespace, Math.min(wanted.get(ep.namespace) ?? Infinity, p.intervalMs));
      }
    }
    for (const [name, ns] of this.namespaces) {
      if (wanted.has(name)) continue;
      ns.stopped = true;
      if (ns.timer !== undefined) this.timers.clearTimeout(ns.timer);
      this.namespaces.delete(name);
    }
    for (const [name, intervalMs] of wanted) {
      const ns = this.namespaces.get(name);
      if (ns) {
        ns.intervalMs = intervalMs;
        continue;
      }
      const fresh: Namespace = {
        name,
        intervalMs,
        busy: false,
        pods: new Map(),
        failures: 0,
        stopped: false,
      };
      this.namespaces.set(name, fresh);
      if (this.state === 'available') this.schedule(fresh, this.random() * intervalMs);
    }
  }

  private schedule(ns: Namespace, delayMs: number): void {
    if (ns.timer !== undefined) this.timers.clearTimeout(ns.timer);
    ns.timer = this.timers.setTimeout(() => this.tick(ns), delayMs);
  }

  private tick(ns: Namespace): void {
    ns.timer = undefined;
    if (ns.stopped || this.state !== 'available') return;
    this.schedule(ns, ns.intervalMs * (1 + 0.1 * (2 * this.random() - 1)));
    if (ns.busy) return;
    ns.busy = true;
    void this.listNamespace(ns).finally(() => {
      ns.busy = false;
    });
  }

  private async listNamespace(ns: Namespace): Promise<void> {
    let items: PodMetrics[];
    try {
      items = await withTimeout(this.api.list(ns.name), this.listTimeoutMs, this.timers);
    } catch (e) {
      if (ns.stopped || this.stopped) return;
      this.counts.lists++;
      this.counts.failures++;
      this.counter?.inc({ source: 'metrics-api', result: 'error' });
      ns.failures++;
      if ((e as { code?: unknown }).code === 404) {
        // The group went away (APIService deleted): ask discovery instead of listing on.
        this.setState('missing');
        this.discoverSoon(0);
        return;
      }
      const fields = { namespace: ns.name, err: errorMessage(e) };
      if (ns.failures === 1) this.log.warn(fields, 'PodMetrics list failed');
      else this.log.debug({ ...fields, failures: ns.failures }, 'PodMetrics list failed again');
      return;
    }
    if (ns.stopped || this.stopped) return;
    this.counts.lists++;
    this.counter?.inc({ source: 'metrics-api', result: 'ok' });
    if (ns.failures > 0)
      this.log.info({ namespace: ns.name, failures: ns.failures }, 'PodMetrics lists recovered');
    ns.failures = 0;
    const at = this.clock.now();
    const wall = this.wallClock();
    const pods = new Map<string, HeldPodFigures>();
    for (const pm of items) {
      const name = pm.metadata?.name;
      if (!name || (pm.metadata.namespace !== undefined && pm.metadata.namespace !== ns.name)) continue;
      const f = podFigures(pm, wall);
      if (f) pods.set(name, { ...f, at });
    }
    ns.pods = pods;
  }

  private discoverSoon(delayMs: number): void {
    if (this.stopped || this.pools.size === 0) return;
    if (this.discoveryTimer !== undefined) this.timers.clearTimeout(this.discoveryTimer);
    this.discoveryTimer = this.timers.setTimeout(() => {
      this.discoveryTimer = undefined;
      void this.discover();
    }, delayMs);
  }

  private async discover(): Promise<void> {
    if (this.discovering || this.stopped) return;
    this.discovering = true;
    let next: number;
    try {
      const serves = await withTimeout(this.api.serves(), this.listTimeoutMs, this.timers);
      this.backoff.reset();
      this.setState(serves ? 'available' : 'missing');
      next = this.discoveryIntervalMs;
    } catch (e) {
      // The API server could not be asked: keep what was known and ask again soon.
      next = Math.min(this.backoff.next(), this.discoveryIntervalMs);
      this.log.debug({ err: errorMessage(e), retryMs: Math.round(next) }, 'metrics API discovery failed');
    } finally {
      this.discovering = false;
    }
    this.discoverSoon(next);
  }

  private setState(state: MetricsApiState): void {
    if (state === this.state || this.stopped) return;
    this.state = state;
    if (state === 'available') {
      this.log.info(`${METRICS_GROUP}/${METRICS_VERSION} is served: reading PodMetrics`);
      for (const ns of this.namespaces.values()) this.schedule(ns, this.random() * ns.intervalMs);
      return;
    }
    if (state === 'missing') {
      this.log.info(
        `${METRICS_GROUP}/${METRICS_VERSION} is not served (no metrics-server?): CPU and memory come from Prometheus endpoints only`,
      );
      for (const ns of this.namespaces.values()) {
        if (ns.timer !== undefined) this.timers.clearTimeout(ns.timer);
        ns.timer = undefined;
        // Figures already read age out as usual.
      }
    }
  }
}

/** Rejects after `ms` unless `p` settles first (the call itself runs on, its answer unused). */
function withTimeout<T>(p: Promise<T>, ms: number, timers: Timers): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const h = timers.setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        timers.clearTimeout(h);
        resolve(v);
      },
      (e: unknown) => {
        timers.clearTimeout(h);
        reject(e);
      },
    );
  });
}
