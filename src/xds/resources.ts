import { createHash } from 'node:crypto';
import type { WirePool } from '../control/messages.js';
import { isUrgent } from '../control/urgency.js';
import { formatAddress } from '../grpc/address.js';
import {
  cacheableMethods,
  cachedCluster,
  cachedClusterName,
  routersCluster,
  routersClusterName,
  routersLoadAssignment,
} from './cache-path.js';
import { clusterLoadAssignment, dataPlaneAddress } from './endpoints.js';
import { envoyCluster, envoyListener, envoyRoutes } from './envoy.js';
import { packAny, type AnyMessage } from './proto.js';
import { proxylessCluster, proxylessListener, stockPolicy, type StockPolicy } from './proxyless.js';
import type { Msg } from './routes.js';
import {
  TYPE,
  resourceName,
  type EnvoyFleet,
  type TypeUrl,
  type XdsPoolInput,
  type XdsView,
} from './types.js';
import { PoolWeights } from './weights.js';

/** A resource ready to send: its Any and a hash of its bytes, so unchanged resources push nothing. */
export interface Encoded {
  readonly name: string;
  readonly any: AnyMessage;
  readonly hash: string;
}

export type ResourceSet = ReadonlyMap<TypeUrl, ReadonlyMap<string, Encoded>>;

/** Changes a resource before it is encoded: a seam for tests that need a client to refuse one. */
export type ResourceMutator = (typeUrl: TypeUrl, resource: Msg) => Msg;

interface PoolEntry {
  readonly input: XdsPoolInput;
  readonly weights: ReadonlyMap<string, number>;
  readonly stock: StockPolicy;
  readonly proxyless: readonly [TypeUrl, Encoded][];
  readonly envoy: readonly [TypeUrl, Encoded][];
}

const TYPE_NAMES: Record<TypeUrl, string> = {
  [TYPE.listener]: 'envoy.config.listener.v3.Listener',
  [TYPE.route]: 'envoy.config.route.v3.RouteConfiguration',
  [TYPE.cluster]: 'envoy.config.cluster.v3.Cluster',
  [TYPE.endpoint]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};

/**
 * The pools' xDS resources, built when a pool changes and kept encoded: proxyless clients get each
 * pool's Listener, Cluster and ClusterLoadAssignment; Envoys get one Listener for their fleet (built
 * per fleet on demand), each pool's Envoy Cluster and the same ClusterLoadAssignment.
 */
export class XdsResources {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly weights = new Map<string, PoolWeights>();
  private readonly fleets = new Map<string, { generation: number; built: readonly [Encoded, Encoded] }>();
  private readonly byName = new Map<string, string>();
  /** all()'s answer per view (and Envoy fleet), for the generation it was built at. */
  private readonly sets = new Map<string, { generation: number; set: ResourceSet }>();
  /** Per pool: each endpoint's address as data planes dial it (host and port, formatted) → the pool's. */
  private readonly addresses = new Map<string, Map<string, string>>();
  private generation = 0;

  constructor(private readonly mutate?: ResourceMutator) {}

  /**
   * Sets or removes a pool. Says whether any resource changed and whether the change is urgent (an
   * endpoint gone or not ready, a breaker opened or closed, a pool added or removed, a spec change):
   * the rules the router's control stream follows (src/control/urgency.ts). New weights alone wait.
   */
  set(key: string, input: XdsPoolInput | undefined): { changed: boolean; urgent: boolean } {
    const before = this.pools.get(key);
    if (!input) {
      this.weights.delete(key);
      if (!before) return { changed: false, urgent: false };
      this.pools.delete(key);
      for (const n of names(key)) this.byName.delete(n);
      this.addresses.delete(key);
      this.generation++;
      return { changed: true, urgent: true };
    }
    let keeper = this.weights.get(key);
    if (!keeper) this.weights.set(key, (keeper = new PoolWeights()));
    const weights = keeper.update(input.endpoints);
    const entry = this.entry(input, weights);
    this.pools.set(key, entry);
    for (const n of names(key)) this.byName.set(n, key);
    this.addresses.set(key, dialled(input));
    // The fleet listener and routes are built from the inputs later (per fleet), so a new input
    // counts as a change even when this pool's own resources came out the same.
    const changed =
      !before || digest(before) !== digest(entry) || JSON.stringify(before.input) !== JSON.stringify(input);
    if (changed) this.generation++;
    return { changed, urgent: isUrgent(before && wire(before.input), wire(input)) };
  }

  keys(): string[] {
    return [...this.pools.keys()];
  }

  /** The pool a resource belongs to (a pool's resources are named NAME.NAMESPACE, cache-path.ts's after it). */
  keyOf(name: string): string | undefined {
    return this.byName.get(name);
  }

  /**
   * The pool and endpoint an Envoy's upstream cluster and socket address are (access logs name the
   * cluster and the address the ClusterLoadAssignment gave): undefined for anything sibyl does not serve.
   */
  locate(cluster: string, host: string, port: number): { pool: string; address: string } | undefined {
    const key = this.byName.get(cluster);
    const address = key && this.addresses.get(key)?.get(formatAddress(host, port));
    return key && address ? { pool: key, address } : undefined;
  }

  /**
   * The weight pushed for each endpoint of a pool, the stock policy chosen, and the cacheable methods
   * Envoys send through how many routers (for status).
   */
  pushed(
    key: string,
  ): { weights: ReadonlyMap<string, number>; stock: StockPolicy; cache?: XdsPoolInput['cache'] } | undefined {
    const e = this.pools.get(key);
    const cache = e?.input.cache;
    return e && { weights: e.weights, stock: e.stock, ...(cache?.methods.length ? { cache } : {}) };
  }

  /**
   * Every resource a client of `view` may be sent (Envoys: those of its fleet). Built once per
   * generation and view (and fleet): every push and every pool's status asks for it per client, and
   * building it per call made the operator spend most of its time here at 200 clients × 500 pools.
   */
  all(view: XdsView, fleet?: EnvoyFleet): ResourceSet {
    const id = view === 'envoy' ? `envoy ${fleet ? JSON.stringify(fleet) : ''}` : view;
    const cached = this.sets.get(id);
    if (cached?.generation === this.generation) return cached.set;
    const set = this.build(view, fleet);
    this.sets.set(id, { generation: this.generation, set });
    return set;
  }

  private build(view: XdsView, fleet?: EnvoyFleet): ResourceSet {
    const out = new Map<TypeUrl, Map<string, Encoded>>([
      [TYPE.listener, new Map()],
      [TYPE.route, new Map()],
      [TYPE.cluster, new Map()],
      [TYPE.endpoint, new Map()],
    ]);
    const admitted = [...this.pools.values()].filter(
      (p) => view === 'proxyless' || !fleet?.namespace || p.input.key.startsWith(`${fleet.namespace}/`),
    );
    for (const p of admitted)
      for (const [type, r] of view === 'proxyless' ? p.proxyless : p.envoy) out.get(type)?.set(r.name, r);
    if (view === 'envoy' && fleet) {
      const [listener, routes] = this.fleetResources(fleet, admitted);
      out.get(TYPE.listener)?.set(listener.name, listener);
      out.get(TYPE.route)?.set(routes.name, routes);
    }
    return out;
  }

  /** The fleet's Listener and RouteConfiguration, built once per generation. */
  private fleetResources(fleet: EnvoyFleet, pools: readonly PoolEntry[]): readonly [Encoded, Encoded] {
    const id = JSON.stringify(fleet);
    const cached = this.fleets.get(id);
    if (cached?.generation === this.generation) return cached.built;
    const inputs = pools.map((p) => p.input);
    const built = [
      this.encode(TYPE.listener, envoyListener(fleet, inputs)),
      this.encode(TYPE.route, envoyRoutes(fleet, inputs)),
    ] as const;
    this.fleets.set(id, { generation: this.generation, built });
    return built;
  }

  private entry(input: XdsPoolInput, weights: ReadonlyMap<string, number>): PoolEntry {
    const cla = this.encode(TYPE.endpoint, clusterLoadAssignment(input, weights));
    return {
      input,
      weights,
      stock: stockPolicy(input),
      proxyless: [
        [TYPE.listener, this.encode(TYPE.listener, proxylessListener(input))],
        [TYPE.cluster, this.encode(TYPE.cluster, proxylessCluster(input))],
        [TYPE.endpoint, cla],
      ],
      envoy: [
        [TYPE.cluster, this.encode(TYPE.cluster, envoyCluster(input))],
        [TYPE.endpoint, cla],
        ...this.cachePath(input),
      ],
    };
  }

  /** A pool with cacheable methods: the routers' cluster and endpoints and the aggregate cluster. */
  private cachePath(input: XdsPoolInput): [TypeUrl, Encoded][] {
    if (cacheableMethods(input).length === 0) return [];
    return [
      [TYPE.cluster, this.encode(TYPE.cluster, routersCluster(input))],
      [TYPE.endpoint, this.encode(TYPE.endpoint, routersLoadAssignment(input))],
      [TYPE.cluster, this.encode(TYPE.cluster, cachedCluster(input))],
    ];
  }

  private encode(type: TypeUrl, resource: Msg): Encoded {
    const r = this.mutate ? this.mutate(type, resource) : resource;
    const any = packAny(TYPE_NAMES[type], r);
    const name = String(r.name ?? r.cluster_name);
    return { name, any, hash: createHash('sha256').update(any.value).digest('base64url').slice(0, 16) };
  }
}

/** Every name a pool's resources go by. */
const names = (key: string) => [resourceName(key), routersClusterName(key), cachedClusterName(key)];

function dialled(input: XdsPoolInput): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of input.endpoints) {
    const { host, port } = dataPlaneAddress(e.address, `endpoint ${e.address} of ${input.key}:`);
    out.set(formatAddress(host, port), e.address);
  }
  return out;
}

function digest(e: PoolEntry): string {
  return [...e.proxyless, ...e.envoy].map(([, r]) => r.hash).join(',');
}

/** The part of a pool the router's urgency rules read, in the router's wire shape. */
function wire(p: XdsPoolInput): WirePool {
  return {
    name: p.key,
    policy: p.spec.balancing.policy,
    specJson: JSON.stringify({ match: p.match, spec: p.spec }),
    endpoints: p.endpoints.map((e) => ({
      address: e.address,
      pod: '',
      ready: e.ready,
      forceOpen: e.draining,
      figuresAgeMs: 0,
    })),
  };
}
