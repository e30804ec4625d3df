import type { TrainingSample } from '../model/sample.js';

/**
 * TypeScript shapes of proto/sibyl/v1/control.proto as @grpc/proto-loader decodes them (camelCase,
 * 64-bit integers as numbers, defaults filled, `msg` naming the oneof member that is set). Proto3
 * `optional` fields are absent when unset.
 */

export interface Hello {
  routerId: string;
  namespace: string;
  version: string;
  routingVersion: number;
  /** Where data planes reach the router's gRPC listener; empty: not offered to Envoy. */
  advertise?: string;
}

export interface Ack {
  routingVersion: number;
}

export interface Nack {
  routingVersion: number;
  error: string;
}

export interface EndpointLoad {
  pool: string;
  address: string;
  calls: number;
  errors: Record<string, number>;
  latencyBoundsMs: number[];
  latencyCounts: number[];
  inflight: number;
  orcaCpu?: number;
  orcaMemory?: number;
  orcaUtilization?: number;
  breaker: string;
  concurrencyLimit: number;
}

/**
 * proto TrainingSample decodes to exactly the model's sample contract. builtin_estimate_ms (field 13,
 * features version 3) is absent from older routers' samples: the operator keeps them but leaves them
 * out of refits (src/model/evaluate.ts usableSample).
 */
export type WireTrainingSample = TrainingSample;

export interface CacheCounters {
  tier: string;
  cache: string;
  hits: number;
  misses: number;
  fills: number;
  evictions: number;
  bytes: number;
  entries: number;
  prefetched: number;
  prefetchHits: number;
}

/** One gRPC method's tries in a pool over the report interval, over all its endpoints. */
export interface MethodLoad {
  pool: string;
  /** "/package.Service/Method". */
  method: string;
  calls: number;
  latencyBoundsMs: number[];
  latencyCounts: number[];
}

export interface LoadReport {
  routerId: string;
  routingVersion: number;
  intervalMs: number;
  endpoints: EndpointLoad[];
  samples: WireTrainingSample[];
  caches: CacheCounters[];
  /** Per pool and method (decoded reports always have it, empty from older routers). */
  methods?: MethodLoad[];
}

export type RouterMessage =
  | { msg: 'hello'; hello: Hello }
  | { msg: 'ack'; ack: Ack }
  | { msg: 'nack'; nack: Nack }
  | { msg: 'load'; load: LoadReport };

export interface WireEndpoint {
  address: string;
  pod: string;
  ready: boolean;
  weight?: number;
  predictedLatencyMs?: number;
  predictedP90Ms?: number;
  errorRate?: number;
  queueLength?: number;
  cpu?: number;
  memory?: number;
  forceOpen: boolean;
  figuresAgeMs: number;
}

export interface WirePool {
  name: string;
  specJson: string;
  endpoints: WireEndpoint[];
  policy: string;
  /** The pool's cache (PoolCacheSpec JSON) from the CacheTier serving it; empty or absent: none. */
  cacheJson?: string;
  /** Changes when the tier is flushed; routers then drop the pool's cache. */
  cacheFlushToken?: string;
}

export interface WireModel {
  version: string;
  artifactJson: string;
}

export interface RoutingSnapshot {
  version: number;
  pools: WirePool[];
  model?: WireModel | null;
  reportIntervalMs: number;
}

export interface RoutingDelta {
  version: number;
  baseVersion: number;
  upserts: WirePool[];
  removed: string[];
  model?: WireModel | null;
}

export type ControlMessage =
  { msg: 'snapshot'; snapshot: RoutingSnapshot } | { msg: 'delta'; delta: RoutingDelta };

/** What the operator's control server sends; `msg` chooses the member. */
export type OutgoingControl = { snapshot: RoutingSnapshot } | { delta: RoutingDelta };
export type OutgoingRouter = { hello: Hello } | { ack: Ack } | { nack: Nack } | { load: LoadReport };
