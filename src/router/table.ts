import type { EndpointHints } from '../balancer/types.js';
import { parseDuration } from '../util/duration.js';
import { Status, statusFromRetryOn } from '../grpc/status.js';
import type { PoolConfig, PoolSpec, RouterFileConfig } from './config.js';

/**
 * The routing table: an immutable snapshot of every pool's match rules, endpoints and settings. The
 * router swaps whole tables atomically (Router.applyTable); the --config file and the operator's
 * control stream both produce tables, so nothing downstream knows where a table came from.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retries). */
  readonly maxAttempts: number;
  /** Status codes that may be retried. */
  readonly retryOn: ReadonlySet<number>;
  /** Retries may add at most this share of recent requests (a token bucket). */
  readonly budgetPercent: number;
}

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
  /** Policy name, then the ones to try if this build lacks it. */
  readonly policy: string;
  readonly fallbackPolicy: string;
  /** Deadline for calls that carry no grpc-timeout, ms. */
  readonly timeoutMs?: number;
  readonly retries: RetryPolicy;
  readonly idempotentMethods: ReadonlySet<string>;
  /** The spec as given, for the parts the router has no typed form of yet (breaker, concurrency, hedging). */
  readonly spec: PoolSpec;
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
  const r = p.retries ?? {};
  const retryOn = (r.retryOn ?? ['unavailable']).map(statusFromRetryOn).filter((c) => c !== undefined);
  return Object.freeze({
    name: p.name,
    services: Object.freeze([...(p.match.services ?? [])]),
    methods: Object.freeze([...(p.match.methods ?? [])]),
    endpoints: Object.freeze(p.endpoints.map((e) => Object.freeze({ address: e.address, name: e.name }))),
    policy: p.balancing?.policy ?? 'Predictive',
    fallbackPolicy: p.balancing?.fallbackPolicy ?? 'PeakEwma',
    timeoutMs: p.timeout ? parseDuration(p.timeout) : undefined,
    retries: Object.freeze({
      maxAttempts: r.maxAttempts ?? 2,
      retryOn: new Set<number>(retryOn.length ? retryOn : [Status.UNAVAILABLE]),
      budgetPercent: r.budgetPercent ?? 20,
    }),
    idempotentMethods: new Set(p.idempotentMethods ?? []),
    spec: p,
  });
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
