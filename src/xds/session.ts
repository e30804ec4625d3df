import { createHash } from 'node:crypto';
import type { DiscoveryRequest, DiscoveryResponse } from './proto.js';
import type { Encoded, ResourceSet } from './resources.js';
import { TYPE, type TypeUrl } from './types.js';

/** A response a client refused: its version, the client's error detail, and what had changed in it. */
export interface NackRecord {
  readonly typeUrl: string;
  readonly version: string;
  readonly detail: string;
  /** Resources of the refused response that differ from what the client last acknowledged. */
  readonly names: readonly string[];
}

interface Sent {
  readonly version: string;
  readonly nonce: string;
  readonly hash: string;
  readonly resources: ReadonlyMap<string, string>; // name → hash
}

interface TypeState {
  /** Legacy wildcard: the first request named nothing (LDS and CDS only). */
  legacyWildcard: boolean;
  wildcard: boolean;
  names: ReadonlySet<string>;
  sent?: Sent;
  acked?: { version: string; resources: ReadonlyMap<string, string> };
  nack?: NackRecord;
}

export type RequestOutcome = 'request' | 'ack' | 'nack' | 'stale';

const ORDER: readonly string[] = [TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route];

/** Types whose responses carry every subscribed resource, so an empty first request means "all". */
const FULL_STATE = new Set<string>([TYPE.listener, TYPE.cluster]);

/**
 * One ADS stream's state of the world, per resource type: what the client subscribes to, the last
 * response (version, nonce, content hash), the last version it acknowledged and the last it refused.
 * Pure: the server feeds it requests and asks it for responses.
 *
 * Rules (xDS protocol, "ACK/NACK and resource type instance version"): a request whose response_nonce
 * is not the latest sent for its type is stale and changes nothing; one that carries the latest
 * nonce acknowledges that response, or refuses it when it has error_detail. A refused response is not
 * sent again: the client stays on the version it last acknowledged until the resources change, and
 * only different content is sent (a content hash per type decides).
 */
export class XdsSession {
  private readonly types = new Map<string, TypeState>();
  private nonce = 0;

  /**
   * `rewarm`: the client rebuilds a cluster it is sent anew and waits for that cluster's
   * ClusterLoadAssignment before using it (Envoy's cluster warming), so a changed Cluster is followed
   * by the EDS response again even when the assignment did not change. Without it Envoy waits out its
   * initial fetch timeout (15 s) and then falls back to its EDS cache.
   */
  constructor(private readonly rewarm = false) {}

  receive(req: DiscoveryRequest): { outcome: RequestOutcome; nack?: NackRecord } {
    const type = req.type_url;
    let st = this.types.get(type);
    if (st && req.response_nonce && req.response_nonce !== st.sent?.nonce) return { outcome: 'stale' };
    const names = req.resource_names ?? [];
    const full = FULL_STATE.has(type);
    if (!st) {
      const legacy = full && names.length === 0;
      st = { legacyWildcard: legacy, wildcard: false, names: new Set() };
      this.types.set(type, st);
    }
    st.wildcard = full && (names.includes('*') || (st.legacyWildcard && names.length === 0));
    st.names = new Set(names.filter((n) => n !== '*'));
    if (!req.response_nonce || !st.sent) return { outcome: 'request' };
    const sent = st.sent;
    if (req.error_detail) {
      const acked = st.acked?.resources;
      const names = [...sent.resources].filter(([n, h]) => acked?.get(n) !== h).map(([n]) => n);
      st.nack = { typeUrl: type, version: sent.version, detail: req.error_detail.message, names };
      return { outcome: 'nack', nack: st.nack };
    }
    st.acked = { version: req.version_info, resources: sent.resources };
    return { outcome: 'ack' };
  }

  /** The types this client asked for, clusters before endpoints before listeners (make before use). */
  requested(): string[] {
    const rank = (t: string) => {
      const i = ORDER.indexOf(t);
      return i < 0 ? ORDER.length : i;
    };
    return [...this.types.keys()].sort((a, b) => rank(a) - rank(b));
  }

  /**
   * The response for `type` from the resources now, or undefined when it would carry what was last
   * sent (whether acknowledged, refused or still in flight). `generation` numbers the versions.
   */
  respond(type: string, all: ResourceSet, generation: number): DiscoveryResponse | undefined {
    const st = this.types.get(type);
    if (!st) return undefined;
    const pool = all.get(type as TypeUrl) ?? new Map<string, Encoded>();
    const chosen = st.wildcard
      ? [...pool.values()]
      : [...st.names].flatMap((n) => {
          const r = pool.get(n);
          return r ? [r] : [];
        });
    chosen.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subscription = st.wildcard ? '*' : [...st.names].sort().join(',');
    const hash = createHash('sha256')
      .update(`${subscription}|${chosen.map((r) => `${r.name}=${r.hash}`).join(',')}`)
      .digest('base64url');
    if (st.sent?.hash === hash) return undefined;
    const before = st.sent?.resources;
    if (this.rewarm && type === TYPE.cluster && before && chosen.some((r) => before.get(r.name) !== r.hash)) {
      const eds = this.types.get(TYPE.endpoint);
      if (eds?.sent) eds.sent = { ...eds.sent, hash: '' };
    }
    const base = String(generation);
    const prev = st.sent?.version;
    const version =
      prev === base || prev?.startsWith(`${base}.`) ? `${base}.${Number(prev.split('.')[1] ?? 0) + 1}` : base;
    const nonce = String(++this.nonce);
    st.sent = { version, nonce, hash, resources: new Map(chosen.map((r) => [r.name, r.hash])) };
    return { version_info: version, resources: chosen.map((r) => r.any), type_url: type, nonce };
  }

  /** Per type: last version sent, acknowledged, and the last refusal. */
  state(): Record<string, { sent?: string; acked?: string; nack?: NackRecord }> {
    const out: Record<string, { sent?: string; acked?: string; nack?: NackRecord }> = {};
    for (const [type, st] of this.types)
      out[type] = {
        ...(st.sent ? { sent: st.sent.version } : {}),
        ...(st.acked ? { acked: st.acked.version } : {}),
        ...(st.nack ? { nack: st.nack } : {}),
      };
    return out;
  }

  /** Whether the client acknowledged `resource` of `type` as it is now (hash), and still subscribes. */
  has(type: string, name: string, hash: string): boolean {
    return this.types.get(type)?.acked?.resources.get(name) === hash;
  }

  /** Whether the client subscribes to `name` of `type` (by name or wildcard). */
  wants(type: string, name: string): boolean {
    const st = this.types.get(type);
    return !!st && (st.wildcard || st.names.has(name));
  }
}
