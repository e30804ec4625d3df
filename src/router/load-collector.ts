import type { Endpoint } from '../balancer/types.js';
import type { TrainingSample } from '../model/sample.js';
import { Status } from '../grpc/status.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../telemetry/histogram.js';
import type { Random } from '../util/clock.js';
import { countMethodCall, type MethodCounts } from '../telemetry/method-latency.js';
import type { EndpointLoad, MethodLoad, WireTrainingSample } from '../control/messages.js';

interface Acc {
  pool: string;
  address: string;
  calls: number;
  errors: Map<number, number>;
  counts: number[];
}

const emptyBuckets = () => new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);

/**
 * Whether an attempt counts in its method's latencies: a client's try the endpoint answered. Not a
 * probe (no client's try: issue 17 keeps probes off clients' figures, as pool-state.ts's recent
 * latencies do), and not a try this router ended, a hedge that lost (CANCELLED) or one past its own
 * or the call's deadline (DEADLINE_EXCEEDED): it lasted as long as the router let it, and counting it
 * would feed the deadlines made from these figures (src/operator/deadlines.ts) back into themselves,
 * as telemetry/als.ts leaves out the tries Envoy reset.
 */
export function methodCounted(code: number, probe: boolean): boolean {
  return !probe && code !== Status.CANCELLED && code !== Status.DEADLINE_EXCEEDED;
}

/** What the router knew at dispatch, for a training sample. */
export type DispatchFeatures = Omit<TrainingSample, 'latencyMs' | 'failed'>;

/** Live per-endpoint figures the collector reads when it reports (in-flight, ORCA, breaker, limit). */
export interface EndpointLive {
  pool: string;
  ep: Endpoint;
  breaker: string;
  concurrencyLimit?: number;
}

/**
 * Per-endpoint counters over one report interval (calls, failures by code, a latency histogram), a
 * latency histogram per pool and gRPC method (the operator's per-method deadlines: as an Envoy's
 * access logs give them, telemetry/als.ts), and a bounded random sample of (features at dispatch,
 * observed latency) for training. `drain()` returns the interval's report and starts the next. Pure:
 * the router calls record() per attempt. Methods come from clients' request paths, so a pool keeps at
 * most MAX_METHODS_PER_POOL of them per interval (the first seen), as the operator does.
 */
export class LoadCollector {
  private acc = new Map<string, Acc>();
  private methods: MethodCounts = new Map();
  private samples: WireTrainingSample[] = [];
  private seen = 0;

  constructor(
    private readonly random: Random,
    private readonly maxSamples = 200,
  ) {}

  /**
   * One attempt at `address` in `pool`. `method` ("/package.Service/Method"): the attempt counts in
   * that method's latencies; undefined: it does not (see methodCounted).
   */
  record(
    pool: string,
    address: string,
    method: string | undefined,
    code: number,
    latencyMs: number,
    failed: boolean,
    features?: DispatchFeatures,
    censored = false,
  ): void {
    // A try the router cut before its answer (CallOutcome.censored: a lost hedge race, its per-try
    // deadline, the client gone) is not reported: its latency is a lower bound, not one to count in
    // the histogram or to train on, and its status is the router's, not the endpoint's.
    if (censored) return;
    const key = `${pool}|${address}`;
    let a = this.acc.get(key);
    if (!a) {
      a = { pool, address, calls: 0, errors: new Map(), counts: emptyBuckets() };
      this.acc.set(key, a);
    }
    a.calls++;
    if (failed) a.errors.set(code, (a.errors.get(code) ?? 0) + 1);
    const i = bucketOf(latencyMs);
    a.counts[i] = (a.counts[i] as number) + 1;
    if (method !== undefined) countMethodCall(this.methods, pool, method, i);
    if (features) this.sample({ ...features, latencyMs, failed });
  }

  /** Reservoir sampling (Vitter's algorithm R): every call equally likely to be kept, memory bounded. */
  private sample(s: TrainingSample): void {
    this.seen++;
    const w: WireTrainingSample = {
      ...s,
      inflight: Math.round(s.inflight),
      payloadBytes: Math.round(s.payloadBytes),
    };
    if (this.samples.length < this.maxSamples) this.samples.push(w);
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < this.maxSamples) this.samples[j] = w;
    }
  }

  drain(live: readonly EndpointLive[]): {
    endpoints: EndpointLoad[];
    samples: WireTrainingSample[];
    methods: MethodLoad[];
  } {
    const endpoints: EndpointLoad[] = [];
    const seen = new Set<string>();
    for (const l of live) {
      const key = `${l.pool}|${l.ep.address}`;
      seen.add(key);
      const a = this.acc.get(key);
      endpoints.push({
        pool: l.pool,
        address: l.ep.address,
        calls: a?.calls ?? 0,
        errors: Object.fromEntries([...(a?.errors ?? [])].map(([c, n]) => [String(c), n])),
        latencyBoundsMs: LATENCY_BOUNDS_MS,
        latencyCounts: a?.counts ?? emptyBuckets(),
        inflight: l.ep.inflight,
        ...(l.ep.load?.cpu !== undefined ? { orcaCpu: l.ep.load.cpu } : {}),
        ...(l.ep.load?.memory !== undefined ? { orcaMemory: l.ep.load.memory } : {}),
        ...(l.ep.load?.utilization !== undefined ? { orcaUtilization: l.ep.load.utilization } : {}),
        breaker: l.breaker,
        concurrencyLimit: l.concurrencyLimit ?? 0,
      });
    }
    const methods: MethodLoad[] = [];
    for (const [pool, p] of this.methods)
      for (const [method, m] of p)
        methods.push({
          pool,
          method,
          calls: m.calls,
          latencyBoundsMs: LATENCY_BOUNDS_MS,
          latencyCounts: m.counts,
        });
    const samples = this.samples;
    this.acc = new Map();
    this.methods = new Map();
    this.samples = [];
    this.seen = 0;
    return { endpoints, samples, methods };
  }
}
