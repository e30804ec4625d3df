import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LoadReport } from '../control/messages.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { makeLogger } from '../util/log.js';
import { systemTimers, type TimerHandle, type Timers } from '../util/timers.js';
import { endpointLoad, type CallCounts } from './call-counts.js';
import { collectionsCounter, type CollectionsCounter } from './counters.js';
import type { ResourceEndpoint, ResourceFigures, ResourceSource, TelemetrySettings } from './resources.js';
import {
  STALE_INTERVALS,
  agedFigures,
  cpuCoresBetween,
  readScrape,
  scrapeTimeoutMs,
  scrapeUrl,
  type ScrapeSample,
  type ScrapeSeries,
  type StampedFigures,
} from './scrape.js';
import { httpScrape, type Scraper } from './scrape-http.js';
import { parseSeriesSelector } from './series.js';
import { servedBetween } from './server-calls.js';

/**
 * Each backend's own Prometheus endpoint (docs/architecture.md, "API", spec.telemetry.prometheus): its
 * CPU and memory, and its own account of the calls it served.
 *
 * Every endpoint of a tracked pool is scraped at http://HOST:PORT/PATH, HOST being the endpoint
 * address's host (*.localhost goes to 127.0.0.1, RFC 6761; a static endpoint is scraped at its own
 * host too) and PORT the pool's prometheus.port, every interval: each target gets a random phase in
 * the first interval and ±10% jitter on each period, so a pool's scrapes spread out; at most
 * `concurrency` scrapes run at once and each is cut off after scrapeTimeoutMs (scrape.ts). A target
 * whose previous scrape is still queued or running skips a turn.
 *
 * CPU comes from a counter of CPU seconds (process_cpu_seconds_total by default), as a rate between
 * successive scrapes: cores = Δ(cpu seconds) / Δ(wall seconds), Prometheus' rate() over two samples.
 * Memory is a gauge (process_resident_memory_bytes by default), taken as read. The first scrape of a
 * target therefore has memory only; CPU follows from the second.
 *
 * Calls come from the latency histogram and the handled and started counters (go-grpc-middleware's
 * grpc_server_* by default; server-calls.ts): from the second scrape on, each scrape's increase since
 * the one before is reported (onServed) as that endpoint's calls, failures and latencies over the
 * interval, the server side of the fleet view (telemetry/fleet.ts).
 *
 * Figures carry their age and are dropped once older than STALE_INTERVALS intervals, so an endpoint
 * that stops answering fades out instead of looking healthy. Failures are counted (stats(), and
 * sibyl_telemetry_collections_total when a registry is given) and logged (a warning when a target starts
 * failing, info when it recovers), never thrown to the caller.
 *
 * A port given by NAME needs the pod's container ports, which this source does not see: such a pool
 * is skipped with one warning until a number is given (the operator may resolve names before track()).
 * A string of digits counts as a number. Targets are plain HTTP.
 */

export interface PrometheusSourceOptions {
  clock?: Clock;
  timers?: Timers;
  random?: Random;
  scrape?: Scraper;
  log?: Logger;
  /** Scrapes in flight at once, over all pools (default 8). */
  concurrency?: number;
  /** Spread of each period, as a fraction of the interval (default 0.1). */
  jitter?: number;
  /** Where to count scrapes (sibyl_telemetry_collections_total{source="prometheus",result}). */
  registry?: Registry;
  /**
   * Each endpoint's calls between two scrapes, as a one-endpoint LoadReport of the server side, and
   * the same calls per gRPC method (the histogram series that carry grpc_service and grpc_method).
   */
  onServed?: ServedListener;
}

export type ServedListener = (report: LoadReport, methods: ReadonlyMap<string, CallCounts>) => void;

/** The reporter name the backends' own counts go under in the fleet view. */
const SERVED_REPORTER = 'prometheus';

export interface PrometheusStats {
  scrapes: number;
  failures: number;
  /** Targets currently scraped. */
  targets: number;
}

interface PoolSettings {
  intervalMs: number;
  timeoutMs: number;
  series: ScrapeSeries;
  port: number | string;
  path: string;
}

interface Target {
  readonly pool: ActivePool;
  readonly address: string;
  readonly url: string;
  /** url + series: a target whose identity changes starts over (its counter baseline means nothing). */
  readonly identity: string;
  timer?: TimerHandle;
  busy: boolean;
  abort?: AbortController;
  /** The last samples with a CPU counter and with call counters: the baselines of the next rates. */
  last?: ScrapeSample;
  lastServed?: ScrapeSample;
  figures?: StampedFigures;
  failures: number;
  stopped: boolean;
}

interface Pool {
  key: string;
  /** Absent while the pool is skipped (its settings cannot be used). */
  settings?: PoolSettings;
  targets: Map<string, Target>;
  /** The reason a pool is skipped, so its warning is logged once per reason. */
  warned?: string;
}

type ActivePool = Pool & { settings: PoolSettings };

export class PrometheusSource implements ResourceSource {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly random: Random;
  private readonly scrape: Scraper;
  private readonly log: Logger;
  private readonly concurrency: number;
  private readonly jitter: number;
  private readonly counter?: CollectionsCounter;
  private readonly onServed?: ServedListener;
  private readonly pools = new Map<string, Pool>();
  private readonly queue: Target[] = [];
  private running = 0;
  private stopped = false;
  private readonly counts = { scrapes: 0, failures: 0 };

  constructor(opts: PrometheusSourceOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? systemRandom;
    this.scrape = opts.scrape ?? httpScrape;
    this.log = opts.log ?? makeLogger('telemetry-prometheus');
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    this.jitter = Math.min(0.5, Math.max(0, opts.jitter ?? 0.1));
    if (opts.registry) this.counter = collectionsCounter(opts.registry);
    this.onServed = opts.onServed;
  }

  track(poolKey: string, endpoints: readonly ResourceEndpoint[], settings: TelemetrySettings): void {
    if (this.stopped) return;
    const prom = settings.prometheus;
    if (!prom) {
      this.untrack(poolKey);
      return;
    }
    let s: PoolSettings;
    try {
      s = {
        intervalMs: Math.max(1, settings.intervalMs),
        timeoutMs: scrapeTimeoutMs(settings.intervalMs),
        series: {
          cpu: parseSeriesSelector(prom.cpuSeries),
          memory: parseSeriesSelector(prom.memorySeries),
          latency: parseSeriesSelector(prom.latencySeries),
          handled: parseSeriesSelector(prom.handledSeries),
          started: parseSeriesSelector(prom.startedSeries),
        },
        port: prom.port,
        path: prom.path,
      };
    } catch (e) {
      this.skipPool(poolKey, errorMessage(e));
      return;
    }
    const known = this.pools.get(poolKey);
    const pool: ActivePool = known?.settings
      ? (known as ActivePool)
      : { key: poolKey, settings: s, targets: new Map() };
    pool.settings = s;
    this.pools.set(poolKey, pool);
    const wanted = new Map<string, { url: string; identity: string }>();
    const skipped = new Set<string>();
    for (const ep of endpoints) {
      const u = scrapeUrl(ep.address, s.port, s.path);
      if ('skip' in u) {
        skipped.add(u.skip);
        continue;
      }
      const identity = [
        u.url,
        prom.cpuSeries,
        prom.memorySeries,
        prom.latencySeries,
        prom.handledSeries,
      ].join(' ');
      wanted.set(ep.address, { url: u.url, identity });
    }
    const reason = [...skipped].join('; ') || undefined;
    if (reason && pool.warned !== reason) {
      this.log.warn({ pool: poolKey, reason }, 'some endpoints are not scraped');
    }
    pool.warned = reason;
    for (const [address, t] of pool.targets) {
      const w = wanted.get(address);
      if (!w || w.identity !== t.identity) this.dropTarget(pool, address);
    }
    for (const [address, w] of wanted) {
      if (pool.targets.has(address)) continue;
      const t: Target = {
        pool,
        address,
        url: w.url,
        identity: w.identity,
        busy: false,
        failures: 0,
        stopped: false,
      };
      pool.targets.set(address, t);
      // A random phase within the first interval spreads a pool's scrapes (Prometheus does the same
      // with a per-target offset).
      this.schedule(t, this.random() * s.intervalMs);
    }
  }

  untrack(poolKey: string): void {
    const pool = this.pools.get(poolKey);
    if (!pool) return;
    for (const address of [...pool.targets.keys()]) this.dropTarget(pool, address);
    this.pools.delete(poolKey);
  }

  figures(poolKey: string): ReadonlyMap<string, ResourceFigures> {
    const out = new Map<string, ResourceFigures>();
    const pool = this.pools.get(poolKey);
    if (!pool?.settings) return out;
    const now = this.clock.now();
    for (const t of pool.targets.values()) {
      const f = agedFigures(t.figures, now, pool.settings.intervalMs, 'prometheus');
      if (f) out.set(t.address, f);
      else t.figures = undefined;
    }
    return out;
  }

  stats(): PrometheusStats {
    let targets = 0;
    for (const p of this.pools.values()) targets += p.targets.size;
    return { ...this.counts, targets };
  }

  stop(): void {
    this.stopped = true;
    for (const key of [...this.pools.keys()]) this.untrack(key);
    this.queue.length = 0;
  }

  private skipPool(poolKey: string, reason: string): void {
    const known = this.pools.get(poolKey);
    if (known && !known.settings && known.warned === reason) return;
    this.untrack(poolKey);
    this.pools.set(poolKey, { key: poolKey, targets: new Map(), warned: reason });
    this.log.warn({ pool: poolKey, reason }, 'pool not scraped');
  }

  private dropTarget(pool: Pool, address: string): void {
    const t = pool.targets.get(address);
    if (!t) return;
    t.stopped = true;
    if (t.timer !== undefined) this.timers.clearTimeout(t.timer);
    t.abort?.abort();
    const i = this.queue.indexOf(t);
    if (i >= 0) this.queue.splice(i, 1);
    pool.targets.delete(address);
  }

  private schedule(t: Target, delayMs: number): void {
    t.timer = this.timers.setTimeout(() => this.tick(t), delayMs);
  }

  private tick(t: Target): void {
    if (t.stopped) return;
    const interval = t.pool.settings.intervalMs;
    this.schedule(t, interval * (1 + this.jitter * (2 * this.random() - 1)));
    if (t.busy) return; // the previous scrape is still queued or running: skip a turn
    t.busy = true;
    this.queue.push(t);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const t = this.queue.shift() as Target;
      this.running++;
      void this.run(t).finally(() => {
        this.running--;
        t.busy = false;
        this.pump();
      });
    }
  }

  private async run(t: Target): Promise<void> {
    const abort = new AbortController();
    t.abort = abort;
    const start = this.clock.now();
    let sample: ScrapeSample;
    try {
      const text = await this.scrape(t.url, t.pool.settings.timeoutMs, abort.signal);
      if (t.stopped) return;
      // The counter was read while the request was served: stamp the sample with the midpoint.
      const at = (start + this.clock.now()) / 2;
      const { series } = t.pool.settings;
      sample = readScrape(text, series, at);
      if (sample.cpuSeconds === undefined && sample.memoryBytes === undefined && !sample.served) {
        const names = [series.cpu, series.memory, series.latency, series.handled].map((s) => s.name);
        throw new Error(`none of ${names.join(', ')} is in the exposition`);
      }
    } catch (e) {
      if (t.stopped) return;
      this.failed(t, e);
      return;
    } finally {
      t.abort = undefined;
    }
    this.counts.scrapes++;
    this.counter?.inc({ source: 'prometheus', result: 'ok' });
    if (t.failures > 0) {
      this.log.info({ pool: t.pool.key, endpoint: t.address, failures: t.failures }, 'scrapes recovered');
    }
    t.failures = 0;
    const maxGap = STALE_INTERVALS * t.pool.settings.intervalMs;
    const cpuCores = cpuCoresBetween(t.last, sample, maxGap);
    if (sample.cpuSeconds !== undefined) t.last = sample;
    t.figures = { at: sample.at, cpuCores, memoryBytes: sample.memoryBytes };
    this.served(t, sample, maxGap);
  }

  /**
   * The calls the endpoint served since its last scrape with counters, reported as the server side.
   * The first scrape is a baseline; so is one after a gap of more than maxGap, whose increase would
   * be counted as fresh in the fleet's window though it is mostly older.
   */
  private served(t: Target, sample: ScrapeSample, maxGap: number): void {
    if (!sample.served) return;
    const prev = t.lastServed;
    t.lastServed = sample;
    const dt = prev ? sample.at - prev.at : 0;
    if (!prev?.served || !(dt > 0) || dt > maxGap || !this.onServed) return;
    const { counts, inflight, methods } = servedBetween(prev.served, sample.served);
    this.onServed(
      {
        routerId: SERVED_REPORTER,
        routingVersion: 0,
        intervalMs: Math.round(dt),
        endpoints: [endpointLoad(t.pool.key, t.address, counts, inflight !== undefined ? { inflight } : {})],
        samples: [],
        caches: [],
      },
      methods,
    );
  }

  private failed(t: Target, e: unknown): void {
    this.counts.scrapes++;
    this.counts.failures++;
    this.counter?.inc({ source: 'prometheus', result: 'error' });
    t.failures++;
    const fields = { pool: t.pool.key, endpoint: t.address, url: t.url, err: errorMessage(e) };
    if (t.failures === 1) this.log.warn(fields, 'scrape failed');
    else this.log.debug({ ...fields, failures: t.failures }, 'scrape failed again');
  }
}
