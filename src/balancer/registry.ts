import { SibylError } from '../util/errors.js';
import type { Balancer, BalancerDeps, BalancerFactory } from './types.js';

/** Policies register themselves by name, as grpc-js's registerLoadBalancerType does. */
const factories = new Map<string, BalancerFactory>();

export function registerBalancer(name: string, factory: BalancerFactory): void {
  factories.set(name, factory);
}

export function createBalancer(
  name: string,
  deps: BalancerDeps,
  options?: Record<string, unknown>,
): Balancer {
  const f = factories.get(name);
  if (!f)
    throw new SibylError(
      'ERR_CONFIG_INVALID',
      `unknown balancing policy "${name}" (known: ${balancerNames().join(', ')})`,
    );
  return f(deps, options);
}

export function balancerNames(): string[] {
  return [...factories.keys()].sort();
}
