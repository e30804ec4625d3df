import { experimental, InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import '../balancer/index.js';
import { PredictiveLoadBalancer } from './balancer.js';
import { PREDICTIVE_LB, PredictiveLbConfig } from './config.js';
import { METHOD_KEY } from './picker.js';

/**
 * sibyl for Node gRPC clients: the router's per-call policy inside a grpc-js channel.
 *
 *   import { registerPredictiveBalancer, predictiveInterceptor } from 'sibyl';
 *   registerPredictiveBalancer();
 *   // with @grpc/grpc-js-xds: the operator's cluster names the policy; dial xds:///NAME.NAMESPACE
 *
 * Without xDS, name it in a service config:
 *   { loadBalancingConfig: [{ 'sibyl.PredictiveLb': { policy: 'Predictive' } }] }
 */
// The package's API (package.json exports).
// ts-unused-exports:disable-next-line
export { PREDICTIVE_LB, PredictiveLbConfig, PredictiveLoadBalancer };

/** Registers `sibyl.PredictiveLb` with grpc-js (idempotent). */
export function registerPredictiveBalancer(): void {
  if (experimental.isLoadBalancerNameRegistered(PREDICTIVE_LB)) return;
  experimental.registerLoadBalancerType(PREDICTIVE_LB, PredictiveLoadBalancer, PredictiveLbConfig);
}

/**
 * A client interceptor that tells the policy each call's method (grpc-js's picker sees only its
 * metadata): the policy then learns latencies per method, as the router does. Optional.
 */
export const predictiveInterceptor: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set(METHOD_KEY, String(options.method_definition.path));
      next(metadata, listener);
    },
  });
