import { roundTo } from '../util/round.js';
import type { AssessedEndpoint, EndpointFigures } from './pool-view.js';

/**
 * An endpoint's figures as status shows them: the fleet's telemetry (latencies to 0.01 ms), the
 * prediction and the weight. CPU is in cores from the metrics API or Prometheus when known, else the
 * routers' ORCA utilisation (0..1).
 */
export function endpointFigures(a: AssessedEndpoint): EndpointFigures {
  const { view: v, prediction: p, resources: r } = a;
  const f: EndpointFigures = { breaker: a.breaker };
  if (v) {
    f.inflight = v.inflight;
    if (v.cpu !== undefined) f.cpu = roundTo(v.cpu, 3);
    if (v.p50Ms !== undefined) f.latencyP50Ms = roundTo(v.p50Ms, 2);
    if (v.p99Ms !== undefined) f.latencyP99Ms = roundTo(v.p99Ms, 2);
    if (v.concurrencyLimit !== undefined) f.concurrencyLimit = v.concurrencyLimit;
  }
  if (p) f.predictedLatencyMs = roundTo(p.latencyMs, 2);
  if (r?.cpuCores !== undefined) f.cpu = roundTo(r.cpuCores, 3);
  if (r?.memoryBytes !== undefined) f.memoryBytes = Math.round(r.memoryBytes);
  if (a.weight !== undefined) f.weight = a.weight;
  return f;
}
