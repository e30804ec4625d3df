import type { EndpointView, FleetTelemetry } from '../telemetry/fleet.js';
import type { ResolvedEndpoint } from './endpoints.js';

/** Each endpoint's fleet view, read once per reconcile: view() merges every router's histograms. */
export function endpointViews(
  telemetry: FleetTelemetry,
  key: string,
  endpoints: readonly ResolvedEndpoint[],
): Map<string, EndpointView | undefined> {
  return new Map(endpoints.map((e) => [e.address, telemetry.view(key, e.address)]));
}

/**
 * The pool's typical latency: the median of its endpoints' p50s (the upper one of an even count),
 * the model's method-cost input. Undefined while no endpoint has one.
 */
export function typicalLatencyMs(views: Iterable<EndpointView | undefined>): number | undefined {
  const p50s = [...views]
    .map((v) => v?.p50Ms)
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  return p50s.length ? p50s[Math.floor(p50s.length / 2)] : undefined;
}
