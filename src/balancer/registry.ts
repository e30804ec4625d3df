import type { Static, TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SibylError } from '../util/errors.js';
import type { Balancer, BalancerDeps } from './types.js';

/**
 * Policies register themselves by name with the schema of their JSON config, as grpc-js's
 * `registerLoadBalancerType` takes a name, a balancer class and a `TypedLoadBalancingConfig` with
 * `createFromJson`: a config is parsed and checked once (bounds, defaults, unknown keys refused) into a
 * typed, frozen object, and a balancer is built from that object alone. What a policy needs that is not
 * configuration (the clock, randomness, a model's predict function) comes in `BalancerDeps`.
 */
interface PolicyType {
  readonly schema: TObject;
  create(config: object, deps: BalancerDeps): Balancer;
}

const types = new Map<string, PolicyType>();

export function registerBalancer<S extends TObject>(
  name: string,
  schema: S,
  create: (config: Static<S>, deps: BalancerDeps) => Balancer,
): void {
  types.set(name, { schema, create: create as PolicyType['create'] });
}

/** A policy's name with its parsed, checked config: what createBalancer builds a balancer from. */
export interface BalancerConfig {
  readonly policy: string;
  readonly config: Readonly<object>;
}

function typeOf(name: string): PolicyType {
  const t = types.get(name);
  if (!t)
    throw new SibylError(
      'ERR_CONFIG_INVALID',
      `unknown balancing policy "${name}" (known: ${balancerNames().join(', ')})`,
    );
  return t;
}

/**
 * Parses `json` (an object of the policy's options; absent: every default) against the policy's
 * schema. Throws ERR_CONFIG_INVALID naming each bad option.
 */
export function parseBalancerConfig(policy: string, json: unknown = {}): BalancerConfig {
  const { schema } = typeOf(policy);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SibylError('ERR_CONFIG_INVALID', `${policy} config must be an object`);
  }
  const config = Value.Default(schema, structuredClone(json)) as object;
  const problems = [...Value.Errors(schema, config)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length) {
    throw new SibylError('ERR_CONFIG_INVALID', `${policy} config: ${problems.join('; ')}`);
  }
  return Object.freeze({ policy, config: Object.freeze(config) });
}

/** A balancer for a parsed config, or for a policy name and its JSON options (parsed here). */
export function createBalancer(config: BalancerConfig, deps: BalancerDeps): Balancer;
export function createBalancer(policy: string, deps: BalancerDeps, json?: unknown): Balancer;
export function createBalancer(c: BalancerConfig | string, deps: BalancerDeps, json?: unknown): Balancer {
  const parsed = typeof c === 'string' ? parseBalancerConfig(c, json) : c;
  return typeOf(parsed.policy).create(parsed.config, deps);
}

export function balancerNames(): string[] {
  return [...types.keys()].sort();
}
