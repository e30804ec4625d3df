import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock, Random } from '../util/clock.js';
import type { Timers } from '../util/timers.js';
import { PodMetricsSource, kubePodMetricsApi, type PodMetricsApi } from './pod-metrics.js';
import { OrcaSource, type OrcaLoad } from './orca-oob.js';
import { PrometheusSource, type ServedListener } from './prometheus.js';
import type { Scraper } from './scrape-http.js';
import type { ResourceEndpoint, ResourceFigures, ResourceSource, TelemetrySettings } from './resources.js';

/**
 * One ResourceSource over several (the operator holds one object): every call goes to each source,
 * and figures() takes, per endpoint address, the better figure of those the sources have.
 *
 * Which is better (preferFigures): the one with more of the two figures (CPU, memory), then the
 * fresher (smaller ageMs), then the earlier source. Freshness decides between complete figures: a
 * Prometheus scrape every interval is usually fresher than PodMetrics (which lag by metrics-server's
 * resolution), and the metrics API fills in where a pod has no Prometheus endpoint. Completeness
 * comes first so that, say, a first scrape (memory only: CPU needs two) does not hide the metrics
 * API's CPU for an interval. A figure is never assembled from two sources: each keeps one source and
 * one age.
 */
export function preferFigures(a: ResourceFigures, b: ResourceFigures): ResourceFigures {
  const count = (f: ResourceFigures) =>
    (f.cpuCores !== undefined ? 1 : 0) + (f.memoryBytes !== undefined ? 1 : 0);
  if (count(a) !== count(b)) return count(a) > count(b) ? a : b;
  return b.ageMs < a.ageMs ? b : a;
}

export class ResourceCollector implements ResourceSource {
  constructor(readonly sources: readonly ResourceSource[]) {}

  track(poolKey: string, endpoints: readonly ResourceEndpoint[], settings: TelemetrySettings): void {
    for (const s of this.sources) s.track(poolKey, endpoints, settings);
  }

  untrack(poolKey: string): void {
    for (const s of this.sources) s.untrack(poolKey);
  }

  figures(poolKey: string): ReadonlyMap<string, ResourceFigures> {
    const out = new Map<string, ResourceFigures>();
    for (const s of this.sources) {
      for (const [address, f] of s.figures(poolKey)) {
        const have = out.get(address);
        out.set(address, have ? preferFigures(have, f) : f);
      }
    }
    return out;
  }

  stop(): void {
    for (const s of this.sources) s.stop();
  }
}

export interface CollectorOptions {
  /** For the metrics API; without it (and without metricsApi) only Prometheus endpoints are read. */
  kubeConfig?: KubeConfig;
  /** The metrics API to use instead of one made from kubeConfig (tests). */
  metricsApi?: PodMetricsApi;
  log?: Logger;
  registry?: Registry;
  clock?: Clock;
  timers?: Timers;
  random?: Random;
  scrape?: Scraper;
  /** Prometheus scrapes in flight at once (default 8). */
  concurrency?: number;
  discoveryIntervalMs?: number;
  /**
   * The backends' own counts of the calls they served, per scrape (server side of the fleet view), and
   * the same per gRPC method.
   */
  onServed?: ServedListener;
  /** Out-of-band ORCA reports; without it, the operator subscribes to none. */
  onLoad?: (pool: string, address: string, load: OrcaLoad) => void;
}

/**
 * The collector the operator uses: Prometheus endpoints (CPU, memory and the calls served), then the
 * metrics API when there is a cluster, and out-of-band ORCA when asked for (its figures go to onLoad).
 */
export function createResourceCollector(opts: CollectorOptions = {}): ResourceCollector {
  const common = {
    clock: opts.clock,
    timers: opts.timers,
    random: opts.random,
    registry: opts.registry,
  };
  const sources: ResourceSource[] = [
    new PrometheusSource({
      ...common,
      scrape: opts.scrape,
      concurrency: opts.concurrency,
      log: opts.log?.child({ source: 'prometheus' }),
      onServed: opts.onServed,
    }),
  ];
  if (opts.onLoad)
    sources.push(
      new OrcaSource({ onLoad: opts.onLoad, timers: opts.timers, log: opts.log?.child({ source: 'orca' }) }),
    );
  const api = opts.metricsApi ?? (opts.kubeConfig ? kubePodMetricsApi(opts.kubeConfig) : undefined);
  if (api) {
    sources.push(
      new PodMetricsSource(api, {
        ...common,
        discoveryIntervalMs: opts.discoveryIntervalMs,
        log: opts.log?.child({ source: 'metrics-api' }),
      }),
    );
  }
  return new ResourceCollector(sources);
}
