import type { FeatureInput } from '../model/features.js';
import type { TrainingSample } from '../model/sample.js';
import type { EndpointView } from '../telemetry/fleet.js';
import type { ObservedCall } from '../telemetry/als.js';

/**
 * The model's input for an endpoint as the operator knows it: its fleet view (docs/architecture.md,
 * "Model") rather than one router's state at dispatch. The built-in estimate at this level is what
 * the fleet observes there now (the p50 of the latest reports), in-flight is per reporting client, and
 * `baselineMs` is the pool's typical latency (endpoint-views.ts typicalLatencyMs), the method cost.
 * ModelManager predicts from exactly this, and access-log samples are made of it, so the model is
 * asked about the figures it was trained on.
 */
export function fleetInput(v: EndpointView, baselineMs?: number): FeatureInput {
  const routers = Math.max(1, v.routers);
  const base = baselineMs ?? v.p50Ms ?? 1;
  // What the endpoint does now (its latest reports), not the window's memory of it: a recovered
  // endpoint must not be predicted slow, and so hinted slow to routers, for a whole window.
  const estimate = v.recentP50Ms ?? v.p50Ms ?? base;
  return {
    inflight: v.inflight / routers,
    queueLength: v.inflight,
    recentLatencyMs: v.p50Ms !== undefined && base > 0 ? v.p50Ms / base : 1,
    payloadBytes: 0,
    methodCostMs: base,
    errorRate: v.errorRate,
    oldestInflightMs: 0,
    telemetryAgeMs: v.ageMs,
    builtinEstimateMs: estimate,
    ...(v.cpu !== undefined ? { cpu: v.cpu } : {}),
    ...(v.memory !== undefined ? { memory: v.memory } : {}),
  };
}

/**
 * The model's input for a typical call of one method on the endpoint: the endpoint's fleet input with
 * the method's own cost (its observed median over the pool, `methodMs`) as the method-cost input, and
 * the built-in estimate scaled from the pool's typical call to this method's (the endpoint's state
 * relative to the pool, recentLatencyMs, is the same for every method). For per-method deadlines
 * (deadlines.ts), which ask for the p99 of such a call.
 */
export function methodInput(v: EndpointView, poolTypicalMs: number, methodMs: number): FeatureInput {
  const input = fleetInput(v, poolTypicalMs);
  const scale = poolTypicalMs > 0 ? methodMs / poolTypicalMs : 1;
  return {
    ...input,
    methodCostMs: methodMs,
    builtinEstimateMs: (input.builtinEstimateMs as number) * scale,
  };
}

/**
 * A training sample from a call an Envoy logged. An access log carries no dispatch-time state (Envoy's
 * in-flight count, its view of the endpoint), so the sample's features are what the operator knew of
 * the endpoint when the interval began — its fleet view before the interval's own report is taken in —
 * and its outcome is the call's latency: the question the operator's predictions answer when it
 * weights data planes for the next interval. The request's size is the call's own.
 */
export function observedSample(c: ObservedCall, v: EndpointView, baselineMs?: number): TrainingSample {
  return {
    ...fleetInput(v, baselineMs),
    payloadBytes: Math.round(c.payloadBytes),
    latencyMs: c.latencyMs,
    failed: c.failed,
  };
}
