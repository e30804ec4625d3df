import type { EndpointView } from '../telemetry/fleet.js';
import type { ResolvedEndpoint } from './endpoints.js';
import type { Prediction, Predictor } from './fleet-predictor.js';

/** The model's prediction for each endpoint it has one for; none while no model is in force. */
export function predictEndpoints(
  predictor: Predictor,
  key: string,
  endpoints: readonly ResolvedEndpoint[],
  views: ReadonlyMap<string, EndpointView | undefined>,
  baselineMs: number | undefined,
): Map<string, Prediction> {
  const out = new Map<string, Prediction>();
  if (!predictor.ready) return out;
  for (const e of endpoints) {
    const p = predictor.predict(key, e.address, views.get(e.address), baselineMs);
    if (p) out.set(e.address, p);
  }
  return out;
}
