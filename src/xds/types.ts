import type { ResolvedPoolSpec } from '../api/resolve.js';

/**
 * What the xDS control plane needs to know of one BackendPool: plain data the operator produces from
 * its fleet view (no Kubernetes objects, no clocks), so the resource builders stay pure functions.
 */
export interface XdsPoolInput {
  /** "namespace/name". */
  readonly key: string;
  readonly match: { readonly services: readonly string[]; readonly methods: readonly string[] };
  readonly spec: ResolvedPoolSpec;
  readonly endpoints: readonly XdsEndpointInput[];
  /**
   * Calls per second the pool receives now, when known. Below half the capacity the weights estimate,
   * proxyless clients are given a weighted pick (open loop, which is safe only well below capacity);
   * otherwise least-request, which reacts to queues.
   */
  readonly offeredCallsPerSec?: number;
  /**
   * The CacheTier serving the pool, when it has one: its cacheable methods (full gRPC paths), which
   * Envoy sends through the routers that serve the pool (src/xds/cache-path.ts), and those routers'
   * data-plane addresses (IP:port; none: Envoy sends them to the backends too).
   */
  readonly cache?: { readonly methods: readonly string[]; readonly routers: readonly string[] };
  /**
   * With spec.timeout.predicted: each method's per-try deadline in force (src/operator/deadlines.ts),
   * by full gRPC path; Envoy routes get it as per_try_timeout (src/xds/routes.ts).
   */
  readonly deadlines?: readonly { readonly method: string; readonly perTryTimeoutMs: number }[];
}

export interface XdsEndpointInput {
  /** host:port or [ipv6]:port. */
  readonly address: string;
  /** Kubernetes readiness (or always true for a static endpoint). */
  readonly ready: boolean;
  /** A fleet breaker is open on it: data planes must stop sending it new calls (health DRAINING). */
  readonly draining: boolean;
  /**
   * The model's predicted service time in ms, without queueing: the time one call holds a slot. The
   * weight follows this, not the response time, because a weight that follows queueing oscillates.
   */
  readonly predictedServiceMs?: number;
  /** Calls it serves at once (its slots); 1 when unknown. */
  readonly concurrency?: number;
  /** The share of its calls that failed over the telemetry window (0 when unknown). */
  readonly errorRate?: number;
}

/** The client families sibyl tells apart, from the node's user_agent_name. */
export type XdsClientKind = 'envoy' | 'grpc-go' | 'grpc-js' | 'grpc' | 'unknown';

/** Proxyless clients get api_listeners; Envoy gets one listener per fleet on a socket. */
export type XdsView = 'proxyless' | 'envoy';

export const viewOf = (kind: XdsClientKind): XdsView => (kind === 'envoy' ? 'envoy' : 'proxyless');

/** An Envoy's place, from its bootstrap's node (cluster and metadata written by `sibyl xds-bootstrap`). */
export interface EnvoyFleet {
  /** node.cluster: Envoys of one fleet share a listener. */
  readonly name: string;
  /** host:port its gRPC listener binds (node metadata "sibyl.dev/listen"). */
  readonly listen: string;
  /** Only this namespace's pools (node metadata "sibyl.dev/namespace"); empty: every namespace. */
  readonly namespace: string;
  /** Where its access logs go, when the operator takes them (node metadata "sibyl.dev/server"). */
  readonly accessLogs?: AccessLogTarget;
}

/**
 * Where an Envoy streams its access logs: the operator's control API as that Envoy reaches it, with
 * the CA and token files its bootstrap names (node metadata written by `sibyl xds-bootstrap`), so the
 * access log stream is admitted like its ADS stream.
 */
export interface AccessLogTarget {
  readonly server: string;
  readonly tokenFile?: string;
  readonly caFile?: string;
}

/** Node metadata keys `sibyl xds-bootstrap --kind envoy` writes and the operator reads back. */
export const NODE_KEYS = {
  listen: 'sibyl.dev/listen',
  namespace: 'sibyl.dev/namespace',
  /** The operator's control API as the Envoy dials it, for its access log stream. */
  server: 'sibyl.dev/server',
  tokenFile: 'sibyl.dev/token-file',
  caFile: 'sibyl.dev/ca-file',
} as const;

/** The resource type URLs of ADS state of the world. */
export const TYPE = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;
export type TypeUrl = (typeof TYPE)[keyof typeof TYPE];
export const SHORT: Record<TypeUrl, string> = {
  [TYPE.listener]: 'LDS',
  [TYPE.route]: 'RDS',
  [TYPE.cluster]: 'CDS',
  [TYPE.endpoint]: 'EDS',
};

/**
 * Resource names. A proxyless client dials xds:///NAME.NAMESPACE, which asks for the Listener of that
 * name; the pool's Cluster and ClusterLoadAssignment share it, for Envoys too.
 */
export function resourceName(key: string): string {
  const [ns, name] = key.split('/') as [string, string];
  return `${name}.${ns}`;
}

/** The Envoy fleet's listener. */
export const envoyListenerName = (fleet: string): string => `sibyl-envoy.${fleet}`;
