import { MAX_LISTED_XDS_CLIENTS, type DataPlanesStatus, type XdsClientStatus } from '../api/backendpool.js';
import type { XdsClientKind } from '../xds/types.js';
import type { Condition, ConditionInput } from './conditions.js';

/** A client's last refusal of one pool's resources, as the operator recorded it. */
export interface NackFacts {
  /** Short type name: LDS, RDS, CDS, EDS. */
  readonly type: string;
  readonly version: string;
  readonly detail: string;
  readonly at: Date;
}

/** One xDS client that has the pool, as the ADS server and the operator's NACK log see it. */
export interface DataPlaneClientFacts {
  readonly node: string;
  readonly kind: XdsClientKind;
  /** The version it last ACKed, by short type name. */
  readonly acked: Readonly<Record<string, string>>;
  /** It has ACKed every one of the pool's resources as they are now. */
  readonly current: boolean;
  /** The latest response of the pool's resources it was sent, it refused: it runs its last good one. */
  readonly refused: boolean;
  readonly lastNack?: NackFacts;
}

/** What the data planes have of a pool: its clients, the weights pushed, the proxyless stock policy. */
export interface DataPlaneFacts {
  readonly clients: readonly DataPlaneClientFacts[];
  /** The endpoint weight pushed, by address. */
  readonly weights: ReadonlyMap<string, number>;
  readonly stockPolicy: string;
  /** The cacheable methods Envoys send through routers, and those routers' addresses (cache-path.ts). */
  readonly cache?: { readonly methods: readonly string[]; readonly routers: readonly string[] };
}

export const DATA_PLANE_SYNCED = 'DataPlaneSynced';
export const CACHE_DATA_PATH = 'CacheDataPath';

/** Error details are the clients' own text: kept whole up to this many characters. */
const MAX_DETAIL = 900;

const clip = (s: string, n = MAX_DETAIL): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/**
 * A client's error detail made short enough for a condition, an event and status. Envoy 1.40 sends
 * the refused resource's debug string (marked goo.gle/debugstr, goo.gle/debugonly…), then ": " and the reason: only the
 * reason is kept. Whitespace runs become one space; what is still too long keeps its head and its
 * tail, where Envoy's and gRPC's messages put the cause.
 */
export function shortDetail(detail: string): string {
  const dump = /^goo\.gle\/debug/.test(detail) ? detail.lastIndexOf('\n: ') : -1;
  const reason = (dump >= 0 ? detail.slice(dump + 3) : detail).replace(/\s+/g, ' ').trim();
  if (reason.length <= MAX_DETAIL) return reason;
  const head = 200;
  return `${reason.slice(0, head)} … ${reason.slice(reason.length - (MAX_DETAIL - head - 3))}`;
}

const seconds = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** "grpc-go client go-1 refused EDS version 7: <detail>" */
export function nackSentence(kind: string, node: string, n: Omit<NackFacts, 'at'>): string {
  return `${kind} client ${node} refused ${n.type} version ${n.version}: ${shortDetail(n.detail)}`;
}

/**
 * The DataPlaneSynced condition, or undefined when no xDS client has the pool (nothing to be in sync).
 * False (XdsRejected) while a client has refused the latest of the pool's resources it was sent: it
 * keeps routing on its last good configuration, which is not the operator's current one. True once
 * every client has ACKed the current resources. A client that was sent a change and has not answered
 * yet is neither: that lasts a round trip, so the condition in force is kept (Unknown when there is
 * none yet).
 */
export function dataPlaneCondition(
  facts: DataPlaneFacts,
  prev: Condition | undefined,
): ConditionInput | undefined {
  const { clients } = facts;
  if (clients.length === 0) return undefined;
  const refused = clients.filter((c) => c.refused);
  const first = refused[0];
  if (first?.lastNack) {
    const others = refused.length > 1 ? ` (and ${refused.length - 1} more)` : '';
    return {
      type: DATA_PLANE_SYNCED,
      status: 'False',
      reason: 'XdsRejected',
      message: `${refused.length} of ${clients.length} xDS clients run their last good configuration: ${nackSentence(first.kind, first.node, first.lastNack)}${others}`,
    };
  }
  if (clients.every((c) => c.current))
    return {
      type: DATA_PLANE_SYNCED,
      status: 'True',
      reason: 'Synced',
      message: `every xDS client (${clients.length}) has ACKed the current resources`,
    };
  if (prev) return { type: prev.type, status: prev.status, reason: prev.reason, message: prev.message };
  const pending = clients.filter((c) => !c.current).length;
  return {
    type: DATA_PLANE_SYNCED,
    status: 'Unknown',
    reason: 'Pending',
    message: `${pending} of ${clients.length} xDS clients have not yet answered the current resources`,
  };
}

/**
 * The CacheDataPath condition: how Envoys serve a pool's cacheable methods (src/xds/cache-path.ts).
 * Undefined when the pool has no cacheable methods or no Envoy has it. True while routers are
 * registered to take them; False (NoRouters) when none is, so Envoy sends them to the backends
 * uncached: cached calls still succeed, but nothing is cached.
 */
export function cacheDataPathCondition(facts: DataPlaneFacts): ConditionInput | undefined {
  const { cache } = facts;
  const envoys = facts.clients.filter((c) => c.kind === 'envoy').length;
  if (!cache || envoys === 0) return undefined;
  const methods = `${cache.methods.length} cacheable method${cache.methods.length === 1 ? '' : 's'}`;
  const n = cache.routers.length;
  return n > 0
    ? {
        type: CACHE_DATA_PATH,
        status: 'True',
        reason: 'ThroughRouters',
        message: `Envoy (${envoys}) sends the ${methods} through ${n} sibyl router${n === 1 ? '' : 's'}, which answer hits and forward misses; other methods go straight to the backends, and so do cacheable ones when no router is reachable`,
      }
    : {
        type: CACHE_DATA_PATH,
        status: 'False',
        reason: 'NoRouters',
        message: `no sibyl router serving the pool advertises an address (router --advertise; the chart's router.withEnvoy=true): Envoy (${envoys}) sends the ${methods} straight to the backends, uncached`,
      };
}

/** Out-of-sync clients first (refused, then waiting), then by node id. */
function rank(c: DataPlaneClientFacts): number {
  return c.refused ? 0 : c.current ? 2 : 1;
}

function clientStatus(c: DataPlaneClientFacts): XdsClientStatus {
  const acked = Object.fromEntries(
    Object.entries(c.acked).filter(([t]) => ['LDS', 'RDS', 'CDS', 'EDS'].includes(t)),
  );
  const n = c.lastNack;
  return {
    node: clip(c.node, 253),
    kind: c.kind,
    synced: c.current,
    ...(Object.keys(acked).length ? { acked } : {}),
    ...(n
      ? {
          lastNack: {
            type: n.type,
            version: clip(n.version, 64),
            detail: shortDetail(n.detail),
            time: seconds(n.at),
          },
        }
      : {}),
  };
}

/** status.dataPlanes: counts by kind over every client, and a bounded list of them. */
export function dataPlanesStatus(facts: DataPlaneFacts): DataPlanesStatus | undefined {
  const { clients } = facts;
  if (clients.length === 0) return undefined;
  const byKind: DataPlanesStatus['byKind'] = {};
  for (const c of clients) byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
  const listed = [...clients]
    .sort((a, b) => rank(a) - rank(b) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
    .slice(0, MAX_LISTED_XDS_CLIENTS);
  return {
    connected: clients.length,
    byKind,
    stockPolicy: facts.stockPolicy,
    clients: listed.map(clientStatus),
    ...(clients.length > listed.length ? { unlisted: clients.length - listed.length } : {}),
  };
}
