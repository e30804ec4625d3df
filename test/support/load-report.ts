import type { EndpointLoad, LoadReport } from '../../src/control/messages.js';
import { LATENCY_BOUNDS_MS, bucketOf } from '../../src/telemetry/histogram.js';

/** One endpoint of pool ns/p in a LoadReport: `calls` all at `latencyMs`, `failures` of them UNAVAILABLE. */
export function endpointLoadOf(
  address: string,
  calls: number,
  failures: number,
  latencyMs: number,
  extra: Partial<EndpointLoad> = {},
): EndpointLoad {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
  counts[bucketOf(latencyMs)] = calls;
  return {
    pool: 'ns/p',
    address,
    calls,
    errors: failures ? { '14': failures } : {},
    latencyBoundsMs: LATENCY_BOUNDS_MS,
    latencyCounts: counts,
    inflight: 2,
    breaker: 'Closed',
    concurrencyLimit: 0,
    ...extra,
  };
}

/** A reporter's LoadReport of these endpoints. */
export const loadReport = (reporter: string, endpoints: EndpointLoad[]): LoadReport => ({
  routerId: reporter,
  routingVersion: 1,
  intervalMs: 1000,
  endpoints,
  samples: [],
  caches: [],
});
