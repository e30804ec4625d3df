import type { Endpoint } from '../balancer/types.js';
import type { TrainingSample } from '../model/sample.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../telemetry/histogram.js';
import type { Random } from '../util/clock.js';
import type { EndpointLoad, WireTrainingSample } from '../control/messages.js';

interface Acc {
  pool: string;
  address: string;
  calls: number;
  errors: Map<number, number>;
  counts: number[];
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
 * Per-endpoint counters over one report interval (calls, failures by code, a latency histogram) and
 * a bounded random sample of (features at dispatch, observed latency) for training. `drain()` returns
 * the interval's report and starts the next. Pure: the router calls record() per attempt.
 */
export class LoadCollector {
  private acc = new Map<string, Acc>();
  private samples: WireTrainingSample[] = [];
  private seen = 0;

  constructor(
    private readonly random: Random,
    private readonly maxSamples = 200,
  ) {}

  record(
    pool: string,
    address: string,
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
      a = {
        pool,
        address,
        calls: 0,
        errors: new Map(),
        counts: new Array<number>(LATENCY_BOUNDS_MS.length).fill(0),
      };
      this.acc.set(key, a);
    }
    a.calls++;
    if (failed) a.errors.set(code, (a.errors.get(code) ?? 0) + 1);
    const i = bucketOf(latencyMs);
    a.counts[i] = (a.counts[i] as number) + 1;
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

  drain(live: readonly EndpointLive[]): { endpoints: EndpointLoad[]; samples: WireTrainingSample[] } {
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
        latencyCounts: a?.counts ?? new Array<number>(LATENCY_BOUNDS_MS.length).fill(0),
        inflight: l.ep.inflight,
        ...(l.ep.load?.cpu !== undefined ? { orcaCpu: l.ep.load.cpu } : {}),
        ...(l.ep.load?.memory !== undefined ? { orcaMemory: l.ep.load.memory } : {}),
        ...(l.ep.load?.utilization !== undefined ? { orcaUtilization: l.ep.load.utilization } : {}),
        breaker: l.breaker,
        concurrencyLimit: l.concurrencyLimit ?? 0,
      });
    }
    const samples = this.samples;
    this.acc = new Map();
    this.samples = [];
    this.seen = 0;
    return { endpoints, samples };
  }
}
