import type { EndpointLoad } from '../control/messages.js';
import { LATENCY_BOUNDS_MS } from './histogram.js';

/**
 * One endpoint's calls over an interval, as every reporter counts them (a router's LoadCollector, an
 * Envoy's access logs, a backend's own Prometheus counters): calls, server-fault failures by gRPC code
 * (src/grpc/status.ts isServerFault), and latencies in the shared buckets (histogram.ts).
 */
export interface CallCounts {
  calls: number;
  errors: Map<number, number>;
  /** Per LATENCY_BOUNDS_MS bucket; may be fractional when re-bucketed from other bounds. */
  counts: number[];
}

export function emptyCounts(): CallCounts {
  return { calls: 0, errors: new Map(), counts: new Array<number>(LATENCY_BOUNDS_MS.length).fill(0) };
}

/** What a reporter other than a router adds to an endpoint's counts (no breaker, no limit of its own). */
interface LoadExtras {
  inflight?: number;
  orcaCpu?: number;
  orcaMemory?: number;
}

/**
 * The counts in a router's EndpointLoad shape, so FleetTelemetry takes every reporter alike. A
 * reporter that is not a router has no breaker state or concurrency limit to report: '' and 0.
 */
export function endpointLoad(pool: string, address: string, c: CallCounts, x: LoadExtras = {}): EndpointLoad {
  return {
    pool,
    address,
    calls: c.calls,
    errors: Object.fromEntries([...c.errors].map(([code, n]) => [String(code), n])),
    latencyBoundsMs: LATENCY_BOUNDS_MS,
    latencyCounts: c.counts,
    inflight: x.inflight ?? 0,
    ...(x.orcaCpu !== undefined ? { orcaCpu: x.orcaCpu } : {}),
    ...(x.orcaMemory !== undefined ? { orcaMemory: x.orcaMemory } : {}),
    breaker: '',
    concurrencyLimit: 0,
  };
}
