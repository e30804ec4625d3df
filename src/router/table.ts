import type { EndpointHints } from '../balancer/types.js';
import { resolvePoolSpec, type ResolvedPoolSpec } from '../api/resolve.js';
import { balancerNames, parseBalancerConfig, type BalancerConfig } from '../balancer/index.js';
import { statusFromRetryOn } from '../grpc/status.js';
import type { PoolCacheSpec } from '../cache/config.js';
import type { PoolConfig, RouterFileConfig } from './config.js';

/**
 * The routing table: an immutable snapshot of every pool's match rules, endpoints and settings. The
 * router swaps whole tables atomically (Router.applyTable); the --config file and the operator's
 * control stream both produce tables, so nothing downstream knows where a table came from.
 */

export interface EndpointRoute {
  readonly address: string;
  readonly name?: string;
  /** The operator's figures for this endpoint (weight, predictions, fleet error rate); none from a file. */
  readonly hints?: EndpointHints;
  /** The operator opened this endpoint's breaker for the whole fleet. */
  readonly forceOpen?: boolean;
}

export interface PoolRoute {
  readonly name: string;
  readonly services: readonly string[];
  readonly methods: readonly string[];
  readonly endpoints: readonly EndpointRoute[];
  /**
   * The pool's settings with every default applied (src/api/resolve.ts). `balancing.policy` is the
   * policy in force: the operator names the fallback there while the pool has no model.
   */
  readonly settings: ResolvedPoolSpec;
  /** The policy's parsed config (balancer/registry.ts), for the policy in force. */
  readonly balancer: BalancerConfig | undefined;
  /** settings.retries.retryOn as gRPC status codes. */
  readonly retryOn: ReadonlySet<number>;
  readonly idempotentMethods: ReadonlySet<string>;
  /** The pool's response cache, when it has one (a routes file's `cache`, or its CacheTier's). */
  readonly cache?: PoolCacheSpec;
  /** The CacheTier's flush token (control stream only): a new value drops the pool's cache. */
  readonly cacheFlushToken?: string;
}

export interface RoutingTable {
  /** Increases with each table; the control stream's routingVersion. */
  readonly version: number;
  readonly pools: readonly PoolRoute[];
  readonly byMethod: ReadonlyMap<string, PoolRoute>;
  readonly byService: ReadonlyMap<string, PoolRoute>;
}

export function poolRoute(p: PoolConfig): PoolRoute {
  const settings = resolvePoolSpec(p);
  const retryOn = settings.retries.retryOn.map(statusFromRetryOn).filter((c) => c !== undefined);
  return Object.freeze({
    name: p.name,
    services: Object.freeze([...(p.match.services ?? [])]),
    methods: Object.freeze([...(p.match.methods ?? [])]),
    endpoints: Object.freeze(p.endpoints.map((e) => Object.freeze({ address: e.address, name: e.name }))),
    settings,
    balancer: balancerConfigOf(settings),
    retryOn: new Set<number>(retryOn),
    idempotentMethods: new Set(settings.idempotentMethods),
    ...(p.cache ? { cache: p.cache } : {}),
  });
}

/**
 * The config of the pool's policy, parsed once: the spec's `balancing.exploration` is Predictive's
 * option of that name. Undefined when this build has no such policy (the pool then runs its fallback).
 */
function balancerConfigOf(settings: ResolvedPoolSpec): BalancerConfig | undefined {
  const { policy, exploration } = settings.balancing;
  if (!balancerNames().includes(policy)) return undefined;
  return parseBalancerConfig(policy, policy === 'Predictive' ? { exploration } : {});
}

export function buildTable(pools: readonly PoolRoute[], version: number): RoutingTable {
  const byMethod = new Map<string, PoolRoute>();
  const byService = new Map<string, PoolRoute>();
  for (const p of pools) {
    for (const m of p.methods) byMethod.set(m, p);
    for (const s of p.services) byService.set(s, p);
  }
  return Object.freeze({ version, pools: Object.freeze([...pools]), byMethod, byService });
}

export function tableFromConfig(config: RouterFileConfig, version = 1): RoutingTable {
  return buildTable(config.pools.map(poolRoute), version);
}

/** "/pkg.Service/Method" → ["pkg.Service", "Method"], or undefined when the path is not a gRPC method. */
export function splitMethod(path: string): [service: string, method: string] | undefined {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  return m ? [m[1] as string, m[2] as string] : undefined;
}

/** The pool for a call: by full method name first, then by service. */
export function matchPool(table: RoutingTable, path: string): PoolRoute | undefined {
  const exact = table.byMethod.get(path);
  if (exact) return exact;
  const parts = splitMethod(path);
  return parts ? table.byService.get(parts[0]) : undefined;
}
