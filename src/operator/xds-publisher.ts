import type { PoolCacheSpec } from '../cache/config.js';
import { isDialableIp } from '../grpc/address.js';
import type { EndpointView } from '../telemetry/fleet.js';
import { roundTo } from '../util/round.js';
import type { XdsEndpointInput, XdsPoolInput } from '../xds/types.js';
import type { AssessedEndpoint, PoolView, RoutingPublisher } from './pool-view.js';
import type { PoolCacheEntry } from './wire-pool.js';

/** What the publisher needs of the ADS server (XdsServer). */
export interface XdsPoolSink {
  setPool(key: string, input: XdsPoolInput | undefined): void;
}

/**
 * A service-time estimate for one endpoint, in ms, from the fleet's telemetry: the lower of the
 * window's median latency and the latest interval's. The weight must follow service time, not
 * response time (src/xds/weights.ts), and of what the fleet view measures the lower median carries
 * the least queueing: a queue that builds up raises the recent median first and a queue that drained
 * leaves the window's median high for the window's length.
 *
 * Its limits: these are latencies the routers measure, so they include the network and whatever
 * queueing the median call still met (an endpoint that is always busy never shows its bare service
 * time), and an endpoint no router called within the window has none (it then gets the pool's mean
 * capacity, src/xds/weights.ts). The model's per-call service-time prediction replaces it (issue 17).
 */
export function serviceTimeMs(
  v: Pick<EndpointView, 'p50Ms' | 'recentP50Ms'> | undefined,
): number | undefined {
  const medians = [v?.p50Ms, v?.recentP50Ms].filter((x): x is number => x !== undefined && x > 0);
  return medians.length ? roundTo(Math.min(...medians), 3) : undefined;
}

/**
 * Each endpoint's concurrency: the routers' reported concurrency limit (the smallest across routers,
 * as the fleet view gives it), but only when every endpoint that has a service time has one. A pool
 * with limits on some endpoints and not others (a router that has not reported yet) would otherwise
 * weigh the limited ones by their limit against 1 for the rest; the weights are relative, so leaving
 * the limit out everywhere is the honest fallback.
 */
function concurrencies(endpoints: readonly AssessedEndpoint[]): (number | undefined)[] {
  const timed = endpoints.filter((a) => serviceTimeMs(a.view) !== undefined);
  const all = timed.length > 0 && timed.every((a) => (a.view?.concurrencyLimit ?? 0) > 0);
  return endpoints.map((a) => (all ? a.view?.concurrencyLimit : undefined));
}

/**
 * The calls per second the operator sees the pool receive: the calls reported within the telemetry
 * window over the window. Only what feeds the fleet telemetry is counted (routers' reports), not a
 * proxyless client's own calls, and a window not yet full after a start reads low; undefined while
 * nothing was reported, which keeps proxyless clients on least-request.
 */
function offeredCallsPerSec(endpoints: readonly AssessedEndpoint[], windowMs: number): number | undefined {
  const views = endpoints.map((a) => a.view).filter((v): v is EndpointView => v !== undefined);
  if (views.length === 0) return undefined;
  return roundTo(views.reduce((s, v) => s + v.calls, 0) / (windowMs / 1000), 1);
}

/**
 * The pool's cache as xDS input: the cacheable methods of the CacheTier serving it (the operator wrote
 * its cacheJson from a validated spec, tier-reconciler.ts) and the routers Envoy may send them through:
 * those that advertise an address Envoy's EDS can take (a router advertising anything else is left
 * out rather than failing the pool's resources).
 */
export function xdsCache(
  entry: PoolCacheEntry | undefined,
  routers: readonly string[],
): XdsPoolInput['cache'] {
  if (!entry?.cacheJson) return undefined;
  const methods = (JSON.parse(entry.cacheJson) as PoolCacheSpec).methods.map((m) => m.method).sort();
  return methods.length ? { methods, routers: routers.filter(isDialableIp) } : undefined;
}

/** A pool's view as xDS input: its match, resolved spec and the fleet's assessment of each endpoint. */
export function xdsPoolInput(
  view: PoolView,
  telemetryWindowMs: number,
  cache?: XdsPoolInput['cache'],
): XdsPoolInput {
  const assessed = view.fleet?.endpoints ?? [];
  const limits = concurrencies(assessed);
  const endpoints = assessed.map((a, i): XdsEndpointInput => {
    const s = serviceTimeMs(a.view);
    const c = limits[i];
    return {
      address: a.endpoint.address,
      ready: a.endpoint.ready,
      draining: a.forceOpen,
      ...(s !== undefined ? { predictedServiceMs: s } : {}),
      ...(c !== undefined ? { concurrency: c } : {}),
      ...(a.view && a.view.calls > 0 ? { errorRate: a.view.errorRate } : {}),
    };
  });
  const offered = offeredCallsPerSec(assessed, telemetryWindowMs);
  const match = view.pool.spec.match;
  const deadlines = view.spec.predictedTimeout
    ? (view.fleet?.deadlines ?? []).map((d) => ({ method: d.method, perTryTimeoutMs: d.perTryTimeoutMs }))
    : [];
  return {
    key: view.key,
    match: { services: match.services ?? [], methods: match.methods ?? [] },
    spec: view.spec,
    endpoints,
    ...(offered !== undefined ? { offeredCallsPerSec: offered } : {}),
    ...(cache ? { cache } : {}),
    ...(deadlines.length ? { deadlines } : {}),
  };
}

/**
 * Publishes each pool to the ADS server for Envoy and proxyless gRPC clients. Level-based: the server
 * compares what it is given with what it holds and pushes only changed resources (weights under their
 * hysteresis do not change), so publishing the same view again sends nothing.
 */
export class XdsPublisher implements RoutingPublisher {
  constructor(
    private readonly xds: XdsPoolSink,
    /** The fleet telemetry's window, for the pool's offered load. */
    private readonly telemetryWindowMs: number,
    /** The cache config of the CacheTier serving a pool and the routers that serve it (addresses). */
    private readonly cache: {
      entry: (pool: string) => PoolCacheEntry | undefined;
      routers: (pool: string) => readonly string[];
    },
    /** The pool is gone (what was kept of its clients' refusals can go too). */
    private readonly onRemoved?: (key: string) => void,
  ) {}

  publish(key: string, view: PoolView | undefined): void {
    const cache = view && xdsCache(this.cache.entry(key), this.cache.routers(key));
    this.xds.setPool(key, view ? xdsPoolInput(view, this.telemetryWindowMs, cache) : undefined);
    if (!view) this.onRemoved?.(key);
  }
}
