import type * as grpc from '@grpc/grpc-js';
import type { PushScheduler } from '../control/push-scheduler.js';
import { cachedClusterName, routersClusterName } from './cache-path.js';
import { structString, type DiscoveryRequest, type DiscoveryResponse, type XdsNode } from './proto.js';
import type { XdsResources } from './resources.js';
import type { NackRecord, XdsSession } from './session.js';
import {
  NODE_KEYS,
  SHORT,
  TYPE,
  envoyListenerName,
  resourceName,
  viewOf,
  type EnvoyFleet,
  type TypeUrl,
  type XdsClientKind,
  type XdsPoolInput,
  type XdsView,
} from './types.js';

export interface XdsClient {
  readonly id: string;
  readonly node: XdsNode;
  readonly kind: XdsClientKind;
  readonly view: XdsView;
  readonly fleet?: EnvoyFleet;
  /** system:serviceaccount:NS:NAME, or '' when unauthenticated clients are allowed. */
  readonly account: string;
  readonly session: XdsSession;
  readonly call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly scheduler: PushScheduler;
}

/** A refusal, attributed to one pool: the client, the type and version refused, its error detail. */
export interface XdsNack {
  readonly pool: string;
  readonly client: { readonly id: string; readonly node: string; readonly kind: XdsClientKind };
  readonly typeUrl: string;
  readonly version: string;
  readonly detail: string;
}

export interface XdsClientInfo {
  readonly id: string;
  readonly node: string;
  readonly cluster: string;
  readonly kind: XdsClientKind;
  readonly account: string;
  readonly fleet?: EnvoyFleet;
  /** By short type name (LDS, CDS, EDS, RDS): versions sent and acknowledged, the last refusal. */
  readonly types: Record<string, { sent?: string; acked?: string; nack?: NackRecord }>;
}

/** What data planes have of one pool: each client concerned, whether it runs the pool's current resources. */
export interface XdsPoolView {
  readonly clients: readonly (XdsClientInfo & { readonly current: boolean })[];
  readonly byKind: Readonly<Partial<Record<XdsClientKind, number>>>;
  readonly weights: ReadonlyMap<string, number>;
  readonly stockPolicy: string;
  /** The cacheable methods Envoys send through routers, and those routers (cache-path.ts). */
  readonly cache?: XdsPoolInput['cache'];
}

/** The client family from the node's user_agent_name (what Envoy, grpc-go and grpc-js-xds send). */
export function kindOf(node: XdsNode): XdsClientKind {
  const ua = node.user_agent_name ?? '';
  if (ua === 'envoy') return 'envoy';
  if (ua === 'gRPC Go') return 'grpc-go';
  if (ua === 'gRPC Node Pure JS') return 'grpc-js';
  return /^gRPC\b/.test(ua) ? 'grpc' : 'unknown';
}

/** The connected xDS clients, and views of them by pool. */
export class XdsClients {
  private readonly clients = new Map<string, XdsClient>();

  /** `accessLogs`: the operator takes Envoys' access logs, so their listeners are given a logger. */
  constructor(
    private readonly resources: XdsResources,
    private readonly accessLogs = false,
  ) {}

  add(c: Omit<XdsClient, 'kind' | 'view' | 'fleet'>): XdsClient {
    const kind = kindOf(c.node);
    const view = viewOf(kind);
    const md = c.node.metadata;
    const server = this.accessLogs ? structString(md, NODE_KEYS.server) : '';
    const [tokenFile, caFile] = [structString(md, NODE_KEYS.tokenFile), structString(md, NODE_KEYS.caFile)];
    const fleet =
      view === 'envoy'
        ? {
            name: c.node.cluster,
            listen: structString(md, NODE_KEYS.listen),
            namespace: structString(md, NODE_KEYS.namespace),
            ...(server
              ? { accessLogs: { server, ...(tokenFile ? { tokenFile } : {}), ...(caFile ? { caFile } : {}) } }
              : {}),
          }
        : undefined;
    const client: XdsClient = { ...c, kind, view, ...(fleet?.listen ? { fleet } : {}) };
    this.clients.set(c.id, client);
    return client;
  }

  remove(c: XdsClient): void {
    this.clients.delete(c.id);
  }

  all(): XdsClient[] {
    return [...this.clients.values()];
  }

  info(): XdsClientInfo[] {
    return this.all().map(infoOf);
  }

  /**
   * The pools a refusal concerns: those whose resources changed in the refused response (narrowed to
   * the ones the client's error names, when it names any); the fleet's listener and routes concern
   * every pool on them.
   */
  nacked(c: XdsClient, nack: NackRecord): XdsNack[] {
    const named = nack.names.filter((n) => nack.detail.includes(n));
    const pools = new Set<string>();
    for (const name of named.length ? named : nack.names) {
      const key = this.resources.keyOf(name);
      if (key) pools.add(key);
      else if (c.fleet && name === envoyListenerName(c.fleet.name))
        for (const k of this.resources.keys())
          if (!c.fleet.namespace || k.startsWith(`${c.fleet.namespace}/`)) pools.add(k);
    }
    const client = { id: c.id, node: c.node.id, kind: c.kind };
    return [...pools].map((pool) => ({
      pool,
      client,
      typeUrl: nack.typeUrl,
      version: nack.version,
      detail: nack.detail,
    }));
  }

  pool(key: string): XdsPoolView | undefined {
    const pushed = this.resources.pushed(key);
    if (!pushed) return undefined;
    const name = resourceName(key);
    const clients: (XdsClientInfo & { current: boolean })[] = [];
    const byKind: Partial<Record<XdsClientKind, number>> = {};
    for (const c of this.clients.values()) {
      const all = this.resources.all(c.view, c.fleet);
      const fleet = c.view === 'envoy' && c.fleet ? envoyListenerName(c.fleet.name) : undefined;
      const mine: [TypeUrl, string][] = [
        [TYPE.listener, fleet ?? name],
        ...(fleet ? [[TYPE.route, fleet] as [TypeUrl, string]] : []),
        [TYPE.cluster, name],
        [TYPE.endpoint, name],
        // Present only for a pool with cacheable methods (cache-path.ts); absent ones are left out below.
        ...(fleet
          ? ([
              [TYPE.cluster, routersClusterName(key)],
              [TYPE.endpoint, routersClusterName(key)],
              [TYPE.cluster, cachedClusterName(key)],
            ] as [TypeUrl, string][])
          : []),
      ];
      const wanted = mine.filter(([t, n]) => c.session.wants(t, n) && all.get(t)?.has(n));
      // An Envoy has every listener and route; it concerns the pool when it has the pool's cluster.
      const concerned = c.view === 'envoy' ? wanted.some(([t]) => t === TYPE.cluster) : wanted.length > 0;
      if (!concerned) continue;
      const current = wanted.every(([t, n]) => c.session.has(t, n, all.get(t)?.get(n)?.hash ?? ''));
      clients.push({ ...infoOf(c), current });
      byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
    }
    return {
      clients,
      byKind,
      weights: pushed.weights,
      stockPolicy: pushed.stock,
      ...(pushed.cache ? { cache: pushed.cache } : {}),
    };
  }
}

function infoOf(c: XdsClient): XdsClientInfo {
  const types: XdsClientInfo['types'] = {};
  for (const [type, s] of Object.entries(c.session.state())) types[SHORT[type as TypeUrl] ?? type] = s;
  return {
    id: c.id,
    node: c.node.id,
    cluster: c.node.cluster,
    kind: c.kind,
    account: c.account,
    ...(c.fleet ? { fleet: c.fleet } : {}),
    types,
  };
}
