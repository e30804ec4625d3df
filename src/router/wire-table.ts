import type { EndpointHints } from '../balancer/types.js';
import { validateRouterConfig, type PoolConfig } from './config.js';
import { buildTable, poolRoute, type PoolRoute, type RoutingTable } from './table.js';
import { cacheConfigIssues } from '../cache/config.js';
import { SibylError, errorMessage } from '../util/errors.js';
import type { WireEndpoint, WirePool } from '../control/messages.js';

/**
 * A routing table from the operator's pools. Each pool's spec goes through the same validation as a
 * --config file, so a snapshot the router cannot use is refused whole (nacked) and the table in force
 * stays. Only ready endpoints are routed to; the operator's figures become the balancer's hints.
 */
export function tableFromWire(pools: readonly WirePool[], version: number, nowMs: number): RoutingTable {
  const configs: PoolConfig[] = pools.map((p) => {
    const spec = JSON.parse(p.specJson) as Record<string, unknown>;
    delete spec.service;
    const balancing = {
      ...((spec.balancing as object | undefined) ?? {}),
      ...(p.policy ? { policy: p.policy } : {}),
    };
    // The CacheTier's config arrives beside the spec (cache_json) and is checked below like a routes
    // file's `pools[].cache`, so a config the router cannot run is nacked with the rest.
    const cache = p.cacheJson ? parseCache(p.name, p.cacheJson, version) : undefined;
    return {
      ...spec,
      ...(cache !== undefined ? { cache } : {}),
      balancing,
      name: p.name,
      endpoints: p.endpoints
        .filter((e) => e.ready)
        .map((e) => ({ address: e.address, ...(e.pod ? { name: e.pod } : {}) })),
    } as PoolConfig;
  });
  // Pools are named namespace/name; the file format's names have no slash, so validate under a
  // stand-in name and keep the real one.
  const checked = configs
    .filter((c) => c.endpoints.length > 0)
    .map((c) => ({ ...c, name: c.name.replace('/', '.') }));
  validateRouterConfig({ pools: checked }, `routing version ${version}`);
  // A pool without endpoints skips the check above, but its cache is still built: check that alone.
  for (const c of configs) {
    if (c.endpoints.length > 0 || c.cache === undefined) continue;
    const issues = cacheConfigIssues(c.cache, `${c.name}.cache`);
    if (issues.length)
      throw new SibylError(
        'ERR_CONFIG_INVALID',
        `routing version ${version}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      );
  }
  const byName = new Map(pools.map((p) => [p.name, p]));
  const routes: PoolRoute[] = configs.map((c) => {
    const route = poolRoute(c);
    const w = byName.get(c.name);
    const wire = new Map((w?.endpoints ?? []).map((e) => [e.address, e]));
    return Object.freeze({
      ...route,
      ...(w?.cacheFlushToken ? { cacheFlushToken: w.cacheFlushToken } : {}),
      endpoints: Object.freeze(
        route.endpoints.map((e) => Object.freeze({ ...e, ...hintsOf(wire.get(e.address), nowMs) })),
      ),
    });
  });
  return buildTable(routes, version);
}

function parseCache(pool: string, json: string, version: number): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (e) {
    throw new SibylError(
      'ERR_CONFIG_INVALID',
      `routing version ${version}: pool ${pool}: cache_json is not JSON (${errorMessage(e)})`,
    );
  }
}

function hintsOf(e: WireEndpoint | undefined, nowMs: number): { hints?: EndpointHints; forceOpen?: boolean } {
  if (!e) return {};
  const h: EndpointHints = { atMs: nowMs - e.figuresAgeMs };
  if (e.weight !== undefined) h.weight = e.weight;
  if (e.predictedLatencyMs !== undefined) h.predictedLatencyMs = e.predictedLatencyMs;
  if (e.predictedP90Ms !== undefined) h.predictedP90Ms = e.predictedP90Ms;
  if (e.errorRate !== undefined) h.errorRate = e.errorRate;
  if (e.queueLength !== undefined) h.queueLength = e.queueLength;
  if (e.cpu !== undefined) h.cpu = e.cpu;
  if (e.memory !== undefined) h.memory = e.memory;
  return { hints: h, ...(e.forceOpen ? { forceOpen: true } : {}) };
}
