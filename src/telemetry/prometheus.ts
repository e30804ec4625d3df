import { request as httpRequest } from 'node:http';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { SibylError, errorMessage } from '../util/errors.js';
import { makeLogger } from '../util/log.js';
import { loopbackAwareLookup, loopbackFor } from '../util/net.js';
import { systemTimers, type TimerHandle, type Timers } from '../util/timers.js';
import { collectionsCounter, type CollectionsCounter } from './counters.js';
import type { ResourceEndpoint, ResourceFigures, ResourceSource, TelemetrySettings } from './resources.js';

/**
 * CPU and memory from each backend's own Prometheus endpoint (docs/architecture.md, "API", spec.telemetry.prometheus).
 *
 * Every endpoint of a tracked pool is scraped at http://HOST:PORT/PATH, HOST being the endpoint
 * address's host (*.localhost goes to 127.0.0.1, RFC 6761) and PORT the pool's prometheus.port, every
 * interval: each target gets a random phase in the first interval and ±10% jitter on each period, so
 * a pool's scrapes spread out; at most `concurrency` scrapes run at once and each is cut off after
 * scrapeTimeoutMs (below). A target whose previous scrape is still queued or running skips a turn.
 *
 * CPU comes from a counter of CPU seconds (process_cpu_seconds_total by default), as a rate between
 * successive scrapes: cores = Δ(cpu seconds) / Δ(wall seconds), Prometheus' rate() over two samples.
 * Memory is a gauge (process_resident_memory_bytes by default), taken as read. The first scrape of a
 * target therefore has memory only; CPU follows from the second.
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

/** Figures older than this many intervals are dropped. */
export const STALE_INTERVALS = 3;
const MAX_SCRAPE_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 8 << 20;

// ---- Pure parts -------------------------------------------------------------------------------

/** A series to read: a metric name and, optionally, labels a sample must carry. */
export interface SeriesSelector {
  name: string;
  labels: Readonly<Record<string, string>>;
}

const SELECTOR = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/;
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/;

/**
 * `name` or `name{label="value",…}` (equality matchers only). Throws ERR_CONFIG_INVALID otherwise.
 */
export function parseSeriesSelector(text: string): SeriesSelector {
  const m = SELECTOR.exec(text.trim());
  const bad = () =>
    new SibylError(
      'ERR_CONFIG_INVALID',
      `"${text}" is not a series: give a metric name, optionally with label="value" matchers in braces`,
    );
  if (!m) throw bad();
  const labels: Record<string, string> = {};
  const body = m[2]?.trim();
  if (body) {
    // Split on commas outside quoted values.
    for (const part of body.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
      const l = LABEL.exec(part);
      if (!l) throw bad();
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
  }
  return { name: m[1] as string, labels };
}

/**
 * The sum of the selected series' samples, or undefined when no sample matches. Summing lets a
 * selector without labels cover a counter split by label (per CPU, per mode); non-finite values are
 * left out. Summary and histogram families have no plain values and never match.
 */
function seriesValue(families: readonly PrometheusFamily[], sel: SeriesSelector): number | undefined {
  let sum: number | undefined;
  for (const f of families) {
    if (f.name !== sel.name) continue;
    for (const s of f.metrics) {
      if (s.value === undefined) continue;
      if (!Object.entries(sel.labels).every(([k, v]) => s.labels?.[k] === v)) continue;
      const v = Number(s.value);
      if (Number.isFinite(v)) sum = (sum ?? 0) + v;
    }
  }
  return sum;
}

/** What one scrape read. */
export interface ScrapeSample {
  /** When the figures were read, ms on the source's clock. */
  at: number;
  cpuSeconds?: number;
  memoryBytes?: number;
}

/**
 * Parses an exposition (text format 0.0.4; OpenMetrics text parses too) and reads the two series.
 * Throws on a malformed exposition.
 */
export function readScrape(
  text: string,
  series: { cpu: SeriesSelector; memory: SeriesSelector },
  at: number,
): ScrapeSample {
  // The parser drops the last sample of an exposition that does not end in a newline.
  const families = parsePrometheusTextFormat(text.endsWith('\n') ? text : `${text}\n`);
  return {
    at,
    cpuSeconds: seriesValue(families, series.cpu),
    memoryBytes: seriesValue(families, series.memory),
  };
}

/**
 * Cores used between two samples of a CPU-seconds counter: Δcpu / Δwall. Undefined when either
 * sample lacks the counter, time did not move forward, the counter went down (a reset: the process
 * restarted, and the next pair of samples gives the rate again), or the samples are more than
 * `maxGapMs` apart (an outage in between, perhaps a restart that a plain decrease would not show).
 */
export function cpuCoresBetween(
  prev: ScrapeSample | undefined,
  next: ScrapeSample,
  maxGapMs = Infinity,
): number | undefined {
  if (prev?.cpuSeconds === undefined || next.cpuSeconds === undefined) return undefined;
  const dtMs = next.at - prev.at;
  if (!(dtMs > 0) || dtMs > maxGapMs) return undefined;
  const dc = next.cpuSeconds - prev.cpuSeconds;
  if (dc < 0) return undefined;
  return dc / (dtMs / 1000);
}

/** An endpoint's latest figures, stamped with when they were read. */
export interface StampedFigures {
  at: number;
  cpuCores?: number;
  memoryBytes?: number;
}

/**
 * The figures as a consumer sees them at `now`: with their age, or undefined when they hold nothing
 * or are older than STALE_INTERVALS × intervalMs.
 */
export function agedFigures(
  f: StampedFigures | undefined,
  now: number,
  intervalMs: number,
  source: ResourceFigures['source'],
): ResourceFigures | undefined {
  if (!f || (f.cpuCores === undefined && f.memoryBytes === undefined)) return undefined;
  const ageMs = Math.max(0, now - f.at);
  if (ageMs > STALE_INTERVALS * intervalMs) return undefined;
  const out: ResourceFigures = { source, ageMs };
  if (f.cpuCores !== undefined) out.cpuCores = f.cpuCores;
  if (f.memoryBytes !== undefined) out.memoryBytes = f.memoryBytes;
  return out;
}

/** Per-scrape timeout: below the interval (80% of it), and at most 10 s as Prometheus' default. */
export function scrapeTimeoutMs(intervalMs: number): number {
  return Math.max(1, Math.min(MAX_SCRAPE_TIMEOUT_MS, Math.floor(intervalMs * 0.8)));
}

/**
 * The URL to scrape for an endpoint address ("host:port" or "[v6]:port"), or why there is none.
 * *.localhost hosts become 127.0.0.1; a port name cannot be resolved here (see above).
 */
export function scrapeUrl(
  address: string,
  port: number | string,
  path: string,
): { url: string } | { skip: string } {
  const m = /^(?:\[([0-9A-Fa-f:.%a-zA-Z]+)\]|([^:[\]]+))(?::[0-9]{1,5})?$/.exec(address);
  if (!m) return { skip: `endpoint address "${address}" is not host:port` };
  let p: number;
  if (typeof port === 'number') p = port;
  else if (/^[0-9]+$/.test(port)) p = Number(port);
  else return { skip: `prometheus port "${port}" is a name, which needs the pod's container ports` };
  if (!Number.isInteger(p) || p < 1 || p > 65535) return { skip: `prometheus port ${port} is out of range` };
  const host = m[1] !== undefined ? `[${m[1]}]` : (loopbackFor(m[2] as string) ?? (m[2] as string));
  return { url: `http://${host}:${p}${path.startsWith('/') ? path : `/${path}`}` };
}

// ---- Fetching ---------------------------------------------------------------------------------

/** Fetches an exposition; rejects on a non-2xx status, a timeout or an oversized body. */
export type Scraper = (url: string, timeoutMs: number, signal: AbortSignal) => Promise<string>;

/** A plain node:http GET asking for the text format, with *.localhost dialled on loopback. */
const httpScrape: Scraper = (url, timeoutMs, signal) =>
  new Promise<string>((resolve, reject) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const req = httpRequest(
      url,
      {
        method: 'GET',
        headers: {
          accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1',
          'user-agent': 'sibyl-operator',
        },
        lookup: loopbackAwareLookup,
        signal: AbortSignal.any([signal, deadline]),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error(`exposition larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code < 200 || code > 299) reject(new Error(`HTTP ${code}`));
          else resolve(Buffer.concat(chunks).toString('utf8'));
        });
      },
    );
    req.on('error', (e) => reject(deadline.aborted ? new Error(`no answer within ${timeoutMs} ms`) : e));
    req.end();
  });

// ---- The source -------------------------------------------------------------------------------

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
}

export interface PrometheusStats {
  scrapes: number;
  failures: number;
  /** Targets currently scraped. */
  targets: number;
}

interface PoolSettings {
  intervalMs: number;
  timeoutMs: number;
  cpu: SeriesSelector;
  memory: SeriesSelector;
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
  last?: ScrapeSample;
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
        cpu: parseSeriesSelector(prom.cpuSeries),
        memory: parseSeriesSelector(prom.memorySeries),
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
      const identity = `${u.url} ${prom.cpuSeries} ${prom.memorySeries}`;
      wanted.set(ep.address, { url: u.url, identity });
    }
    const reason = [...skipped].join('; ') || undefined;
    if (reason && pool.warned !== reason) {
      this.log.warn({ pool: poolKey, reason }, 'some endpoints are not scraped for CPU and memory');
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
    this.log.warn({ pool: poolKey, reason }, 'pool not scraped for CPU and memory');
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
      sample = readScrape(text, t.pool.settings, at);
      if (sample.cpuSeconds === undefined && sample.memoryBytes === undefined) {
        throw new Error(
          `neither ${t.pool.settings.cpu.name} nor ${t.pool.settings.memory.name} is in the exposition`,
        );
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
