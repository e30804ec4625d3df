import type { Balancer, Endpoint, PickRequest } from '../balancer/types.js';
import { dispatchInput, type FeatureInput } from './features.js';

/**
 * A router's training sample inputs for a call it is about to send to `ep`: what its policy knows of
 * the endpoint (`Balancer.dispatchFeatures`, which Predictive keeps in RouterSignals), through the one
 * mapping to the model's input (dispatchInput). Call it before the call is counted on `ep`, as the
 * policy saw it when it picked. Undefined for policies that keep no such figures. The simulator records
 * its samples with the same two functions (src/tools/sim/samples.ts);
 * test/unit/model/dispatch-features.test.ts holds them equal.
 */
export function dispatchSample(balancer: Balancer, ep: Endpoint, req: PickRequest): FeatureInput | undefined {
  const features = balancer.dispatchFeatures?.(ep, req);
  return features && dispatchInput(features);
}
