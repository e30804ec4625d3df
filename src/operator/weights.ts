import { roundTo } from '../util/round.js';
import type { Prediction } from './fleet-predictor.js';

/**
 * The share of traffic each endpoint should get, inversely proportional to its predicted latency and
 * scaled so the best endpoint has 1 (3 decimals); an endpoint without a prediction gets 0, and nothing
 * is weighed while no endpoint has one. Predictions under 0.01 ms count as 0.01 ms.
 */
export function endpointWeights(
  addresses: readonly string[],
  predictions: ReadonlyMap<string, Prediction>,
): Map<string, number> {
  const out = new Map<string, number>();
  if (predictions.size === 0) return out;
  const inv = (a: string) => 1 / Math.max(0.01, predictions.get(a)?.latencyMs ?? Infinity);
  const max = Math.max(...addresses.map(inv));
  for (const a of addresses) out.set(a, roundTo(inv(a) / max, 3));
  return out;
}
