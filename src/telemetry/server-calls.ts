import type { PrometheusFamily } from 'parse-prometheus-text-format';
import { Status, isServerFault } from '../grpc/status.js';
import { emptyCounts, type CallCounts } from './call-counts.js';
import { rebucketInto } from './histogram.js';
import { labelKey, selectedSamples, seriesValue, type SeriesSelector } from './series.js';

/**
 * A backend's own account of the calls it served, from its Prometheus series as go-grpc-middleware
 * (github.com/grpc-ecosystem/go-grpc-middleware, providers/prometheus) names them: a histogram of
 * handling time (grpc_server_handling_seconds), a counter of calls handled by status
 * (grpc_server_handled_total{grpc_code}) and one of calls started (grpc_server_started_total). Every
 * client's calls are in them, proxyless ones included: the operator's figures for endpoints no sibyl
 * router or Envoy reports.
 */
export interface ServerSeries {
  latency: SeriesSelector;
  handled: SeriesSelector;
  started: SeriesSelector;
}

/** The cumulative counters of one scrape, per series (label set). */
export interface ServerCounters {
  /**
   * Per series: cumulative counts by upper bound in seconds (+Inf as Infinity), the count, and the
   * gRPC method ("/service/method") when the series carries grpc_service and grpc_method.
   */
  latency: Map<string, { buckets: Map<number, number>; count: number; method?: string }>;
  /** Per series: its status (from grpc_code; undefined when unknown) and value. */
  handled: Map<string, { code: number | undefined; value: number }>;
  started?: number;
  /** process_start_time_seconds, when exported: a change means the counters restarted. */
  startTime?: number;
}

const CODE_BY_NAME: Record<string, number> = {
  ...Object.fromEntries(Object.entries(Status).map(([k, v]) => [k.replace(/_/g, ''), v])),
  CANCELED: Status.CANCELLED, // Go's codes.Canceled.String()
};

/** A grpc_code label: Go's names ("Unavailable", "DeadlineExceeded"), upper snake case, or a number. */
export function grpcCodeOf(label: string | undefined): number | undefined {
  if (!label) return undefined;
  if (/^[0-9]{1,2}$/.test(label)) return Number(label);
  return CODE_BY_NAME[label.toUpperCase().replace(/_/g, '')];
}

const num = (s: string | undefined): number => (s === undefined ? NaN : Number(s));

/** The counters in a parsed exposition; undefined when it has neither the histogram nor the counter. */
export function readServerCounters(
  families: readonly PrometheusFamily[],
  series: ServerSeries,
): ServerCounters | undefined {
  const latency: ServerCounters['latency'] = new Map();
  const entry = (key: string, labels: Record<string, string> | undefined) => {
    let h = latency.get(key);
    if (!h) latency.set(key, (h = { buckets: new Map(), count: NaN, ...methodOf(labels) }));
    return h;
  };
  // The histogram's samples one by one (see parseExposition: its buckets keep their labels).
  for (const s of selectedSamples(families, { ...series.latency, name: `${series.latency.name}_bucket` })) {
    const le = s.labels?.le;
    const bound = le === '+Inf' ? Infinity : num(le);
    const v = num(s.value);
    if (!Number.isNaN(bound) && Number.isFinite(v)) entry(labelKey(s, 'le'), s.labels).buckets.set(bound, v);
  }
  for (const s of selectedSamples(families, { ...series.latency, name: `${series.latency.name}_count` })) {
    const v = num(s.value);
    if (Number.isFinite(v)) entry(labelKey(s), s.labels).count = v;
  }
  for (const h of latency.values()) if (!Number.isFinite(h.count)) h.count = h.buckets.get(Infinity) ?? 0;
  const handled: ServerCounters['handled'] = new Map();
  for (const s of selectedSamples(families, series.handled)) {
    const value = num(s.value);
    if (Number.isFinite(value)) handled.set(labelKey(s), { code: grpcCodeOf(s.labels?.grpc_code), value });
  }
  if (latency.size === 0 && handled.size === 0) return undefined;
  const started = seriesValue(families, series.started);
  const startTime = seriesValue(families, { name: 'process_start_time_seconds', labels: {} });
  return {
    latency,
    handled,
    ...(started !== undefined ? { started } : {}),
    ...(startTime !== undefined ? { startTime } : {}),
  };
}

/**
 * The gRPC method of a series, "/service/method" as the request path spells it, from go-grpc-middleware's
 * labels (grpc_service is the fully qualified service); nothing when either is missing or the series
 * is a streaming method's (grpc_type other than unary).
 */
function methodOf(labels: Record<string, string> | undefined): { method?: string } {
  const service = labels?.grpc_service;
  const method = labels?.grpc_method;
  // A stream's handling time is the stream's life, not a call's latency: no deadline is made of it.
  const type = labels?.grpc_type;
  if (type !== undefined && type !== 'unary') return {};
  return service && method ? { method: `/${service}/${method}` } : {};
}

/**
 * One endpoint's calls between two scrapes, its calls in flight at the second, and its latencies per
 * gRPC method (from the histogram series that name one).
 */
export interface ServedCalls {
  counts: CallCounts;
  inflight?: number;
  methods: Map<string, CallCounts>;
}

/**
 * The calls served between two scrapes: increases of the counters, as Prometheus' increase() takes
 * them. A counter that went down, or a new process_start_time_seconds, is a restart, and its whole
 * value counts as the increase (counted from zero); a series absent from the earlier scrape did not
 * exist then and counts whole too. Histogram buckets give the latencies: the increase of each
 * cumulative bucket at the bounds both scrapes have (a bound missing from one of them merges its two
 * buckets), spread over the shared latency buckets (histogram.ts rebucketInto). Calls are the
 * histogram's count, or the handled counter's when there is no histogram; failures are the handled
 * counter's server faults by code (grpc/status.ts isServerFault). In flight: started less handled.
 */
export function servedBetween(prev: ServerCounters, next: ServerCounters): ServedCalls {
  const counts = emptyCounts();
  const methods = new Map<string, CallCounts>();
  const restarted =
    prev.startTime !== undefined && next.startTime !== undefined && prev.startTime !== next.startTime;
  for (const [key, n] of next.latency) {
    const p = restarted ? undefined : prev.latency.get(key);
    const reset = p && (n.count < p.count || [...n.buckets].some(([le, v]) => (p.buckets.get(le) ?? 0) > v));
    const base = reset ? undefined : p;
    const les = [...n.buckets.keys()].filter((le) => !base || base.buckets.has(le)).sort((a, b) => a - b);
    const cumulative = les.map((le) => (n.buckets.get(le) as number) - (base?.buckets.get(le) ?? 0));
    const total = n.count - (base?.count ?? 0);
    if (les.at(-1) !== Infinity) {
      les.push(Infinity);
      cumulative.push(total);
    }
    const per = cumulative.map((c, i) => Math.max(0, c - (i > 0 ? (cumulative[i - 1] as number) : 0)));
    const ms = les.map((s) => s * 1000);
    rebucketInto(ms, per, counts.counts);
    counts.calls += total;
    if (n.method && total > 0) {
      let m = methods.get(n.method);
      if (!m) methods.set(n.method, (m = emptyCounts()));
      rebucketInto(ms, per, m.counts);
      m.calls += total;
    }
  }
  let handled = 0;
  for (const [key, n] of next.handled) {
    handled += n.value;
    const p = restarted ? undefined : prev.handled.get(key);
    const d = p && n.value >= p.value ? n.value - p.value : n.value;
    if (next.latency.size === 0) counts.calls += d;
    if (n.code !== undefined && isServerFault(n.code) && d > 0)
      counts.errors.set(n.code, (counts.errors.get(n.code) ?? 0) + d);
  }
  const inflight =
    next.started !== undefined && next.handled.size > 0 ? Math.max(0, next.started - handled) : undefined;
  return { counts, ...(inflight !== undefined ? { inflight } : {}), methods };
}
