import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { experimental } from '@grpc/grpc-js';
import { Balancing, POLICIES } from '../api/backendpool.js';
import { parseBalancerConfig, type BalancerConfig } from '../balancer/index.js';

/**
 * The name sibyl's in-process policy registers under in grpc-js. An xDS cluster names it through a
 * TypedStruct whose type_url ends in this name (gRFC A52); a client without it takes the next policy
 * of the cluster's list.
 */
export const PREDICTIVE_LB = 'sibyl.PredictiveLb';

/**
 * The policy's JSON config, as the operator writes it in the cluster's TypedStruct
 * (src/xds/proxyless.ts): the pool, and its spec.balancing fields. Unknown fields are ignored, so an
 * operator newer than the client does not break it.
 */
const LbJson = Type.Object({
  pool: Type.Optional(Type.String({ maxLength: 300 })),
  policy: Type.Optional(Type.Union(POLICIES.map((p) => Type.Literal(p)))),
  fallbackPolicy: Balancing.properties.fallbackPolicy,
  exploration: Balancing.properties.exploration,
});
type LbJson = Static<typeof LbJson>;

/** grpc-js's typed config for the policy (TypedLoadBalancingConfig with createFromJson). */
export class PredictiveLbConfig implements experimental.TypedLoadBalancingConfig {
  /** The sibyl policy to run, its config parsed once (balancer/registry.ts). */
  readonly balancer: BalancerConfig;

  constructor(readonly json: Readonly<LbJson>) {
    const policy = json.policy ?? 'Predictive';
    this.balancer = parseBalancerConfig(
      policy,
      policy === 'Predictive' && json.exploration !== undefined ? { exploration: json.exploration } : {},
    );
  }

  getLoadBalancerName(): string {
    return PREDICTIVE_LB;
  }

  toJsonObject(): object {
    return { [PREDICTIVE_LB]: this.json };
  }

  /** Throws (grpc-js then refuses the service config, or takes the next policy) on a bad config. */
  static createFromJson(obj: unknown): PredictiveLbConfig {
    const json = typeof obj === 'object' && obj !== null ? obj : {};
    const known = Object.fromEntries(Object.entries(json).filter(([k]) => k in LbJson.properties)) as Record<
      string,
      unknown
    >;
    const problems = [...Value.Errors(LbJson, known)].map((e) => `${e.path}: ${e.message}`);
    if (problems.length) throw new Error(`${PREDICTIVE_LB} config: ${problems.join('; ')}`);
    return new PredictiveLbConfig(known as LbJson);
  }
}
