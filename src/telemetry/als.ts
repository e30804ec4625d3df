import type { LoadReport } from '../control/messages.js';
import { Status, isServerFault } from '../grpc/status.js';
import type { Random } from '../util/clock.js';
import { Reservoir } from '../util/reservoir.js';
import { emptyCounts, endpointLoad, type CallCounts } from './call-counts.js';
import { bucketOf } from './histogram.js';
import { countMethodCall, type MethodCounts } from './method-latency.js';

/** One upstream attempt an Envoy logged, located in a pool (src/xds/access-log-entry.ts reads it). */
interface UpstreamCall {
  pool: string;
  address: string;
  /** The gRPC status the endpoint answered with (see access-log-entry.ts for calls without one). */
  code: number;
  latencyMs: number;
  requestBytes: number;
  /** The gRPC method (the request's :path), when the entry carries it. */
  method?: string;
}

/** A call kept for training: where it went, its request size, and what was observed. */
export interface ObservedCall {
  pool: string;
  address: string;
  payloadBytes: number;
  latencyMs: number;
  failed: boolean;
}

/**
 * One Envoy's interval: its calls in a router's LoadReport shape, a sample of them, and the latencies
 * per pool and gRPC method of the attempts an upstream answered.
 */
export interface AccessLogReport {
  report: LoadReport;
  observed: ObservedCall[];
  methods: ReadonlyMap<string, ReadonlyMap<string, CallCounts>>;
}

/**
 * An Envoy's upstream access logs over one interval, counted per pool and endpoint the way a router's
 * LoadCollector counts its attempts (calls, server-fault failures by code, the shared latency
 * buckets), with a bounded uniform sample of the calls (reservoir, as the router keeps its training
 * samples). Envoy knows nothing of sibyl's breakers or limits, and its logs do not say how many calls
 * were open at once, so those are reported empty (in-flight 0). Pure: the ALS stream records each
 * entry and drains once per interval.
 */
export class AccessLogAggregator {
  private acc = new Map<string, { pool: string; address: string; counts: CallCounts }>();
  private methods: MethodCounts = new Map();
  private readonly sample: Reservoir<ObservedCall>;

  constructor(random: Random, maxSamples = 200) {
    this.sample = new Reservoir(random, maxSamples);
  }

  record(c: UpstreamCall): void {
    const key = `${c.pool}|${c.address}`;
    let a = this.acc.get(key);
    if (!a) this.acc.set(key, (a = { pool: c.pool, address: c.address, counts: emptyCounts() }));
    const failed = isServerFault(c.code);
    a.counts.calls++;
    if (failed) a.counts.errors.set(c.code, (a.counts.errors.get(c.code) ?? 0) + 1);
    const i = bucketOf(c.latencyMs);
    a.counts.counts[i] = (a.counts.counts[i] as number) + 1;
    // Per method, only attempts the upstream answered: one Envoy reset (a hedge that lost, a try its
    // per-try timeout cut, a caller gone) lasted as long as Envoy let it, and counting it would feed
    // the deadlines made from these figures (src/operator/deadlines.ts) back into themselves.
    if (c.method && c.code !== Status.CANCELLED) countMethodCall(this.methods, c.pool, c.method, i);
    this.sample.offer({
      pool: c.pool,
      address: c.address,
      payloadBytes: c.requestBytes,
      latencyMs: c.latencyMs,
      failed,
    });
  }

  /** The interval's report as `reporter` (undefined when no call was logged), then a new interval. */
  drain(reporter: string, intervalMs: number): AccessLogReport | undefined {
    const observed = this.sample.drain();
    if (this.acc.size === 0) return undefined;
    const endpoints = [...this.acc.values()].map((a) => endpointLoad(a.pool, a.address, a.counts));
    const methods = this.methods;
    this.acc = new Map();
    this.methods = new Map();
    return {
      report: { routerId: reporter, routingVersion: 0, intervalMs, endpoints, samples: [], caches: [] },
      observed,
      methods,
    };
  }
}
