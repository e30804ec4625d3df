import { loopbackFor } from '../util/net.js';
import type { ResourceFigures } from './resources.js';
import { readServerCounters, type ServerCounters, type ServerSeries } from './server-calls.js';
import { parseExposition, seriesValue, type SeriesSelector } from './series.js';

/**
 * The pure parts of scraping a backend's Prometheus endpoint (prometheus.ts runs the scrapes): what
 * an exposition says, rates and increases between two scrapes, ageing, timeouts and targets.
 */

/** Figures older than this many intervals are dropped. */
export const STALE_INTERVALS = 3;
const MAX_SCRAPE_TIMEOUT_MS = 10_000;

/** The series a pool's scrapes read. */
export interface ScrapeSeries extends ServerSeries {
  cpu: SeriesSelector;
  memory: SeriesSelector;
}

/** What one scrape read. */
export interface ScrapeSample {
  /** When the figures were read, ms on the source's clock. */
  at: number;
  cpuSeconds?: number;
  memoryBytes?: number;
  /** The backend's call counters (server-calls.ts), when it exports them. */
  served?: ServerCounters;
}

/**
 * Parses an exposition (text format 0.0.4; OpenMetrics text parses too) and reads the series.
 * Throws on a malformed exposition.
 */
export function readScrape(text: string, series: ScrapeSeries, at: number): ScrapeSample {
  const families = parseExposition(text);
  const served = readServerCounters(families, series);
  return {
    at,
    cpuSeconds: seriesValue(families, series.cpu),
    memoryBytes: seriesValue(families, series.memory),
    ...(served ? { served } : {}),
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
