import * as grpc from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  unpackAny,
  type AnyMessage,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type XdsNode,
} from '../../xds/proto.js';
import { TYPE } from '../../xds/types.js';

type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
type Obj = Record<string, unknown>;

const Ads = grpc.makeGenericClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService');

/** A ClusterLoadAssignment the client acknowledged: when, and how many endpoints it may use. */
export interface EdsArrival {
  readonly cluster: string;
  /** HEALTHY or UNKNOWN endpoints (the only ones gRPC clients use). */
  readonly usable: number;
  /** performance.now() when the ACK was written. */
  readonly atMs: number;
}

/**
 * A simulated proxyless gRPC client for `sibyl bench scale`: one ADS stream, state of the world,
 * subscribing as grpc-go's xDS client does (gRFC A27): LDS for the listeners it dials
 * (xds:///NAME.NAMESPACE), then CDS for the clusters their routes name, then EDS for those clusters'
 * service names. Every response is acknowledged (its version_info and nonce, xDS protocol "ACK/NACK"),
 * or refused with error_detail when it cannot be read. It keeps no channels: only what arrived.
 */
export class AdsClient {
  readonly acks: Record<string, number> = {};
  nacks = 0;
  error?: string;
  private readonly call: Stream;
  private readonly client: grpc.Client;
  private readonly names = new Map<string, string[]>();
  /** Per type: the version last acknowledged and the nonce last received. */
  private readonly acked = new Map<string, string>();
  private readonly nonces = new Map<string, string>();
  private sentNode = false;
  /** Per ClusterLoadAssignment name: its bytes last decoded and what they held (a push resends all). */
  private readonly cla = new Map<string, { bytes: Buffer; usable: number }>();

  constructor(
    address: string,
    private readonly node: XdsNode,
    listeners: readonly string[],
    private readonly onEds: (a: EdsArrival) => void = () => {},
  ) {
    // A connection of its own, as a separate process would have (grpc-js shares subchannels otherwise).
    this.client = new Ads(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    });
    const open = (this.client as unknown as Record<string, () => Stream>).StreamAggregatedResources;
    this.call = (open as () => Stream).call(this.client);
    this.call.on('data', (r: DiscoveryResponse) => this.receive(r));
    this.call.on('error', (e: grpc.ServiceError) => (this.error = e.message));
    this.subscribe(TYPE.listener, [...listeners].sort());
  }

  /** The usable endpoint count of each cluster's latest acknowledged assignment. */
  usable(cluster: string): number | undefined {
    return this.cla.get(cluster)?.usable;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }

  /** A request for `type`: what it subscribes to, the version it last acknowledged, `nonce` answered. */
  private send(type: string, nonce: string, error?: string): void {
    this.call.write({
      type_url: type,
      resource_names: this.names.get(type) ?? [],
      version_info: this.acked.get(type) ?? '',
      response_nonce: nonce,
      ...(this.sentNode ? {} : { node: this.node }),
      ...(error ? { error_detail: { code: grpc.status.INVALID_ARGUMENT, message: error } } : {}),
    });
    this.sentNode = true;
  }

  /** Asks for `names` of `type` when they differ from what it asks for now (a new subscription). */
  private subscribe(type: string, names: string[]): void {
    if (this.names.get(type)?.join(',') === names.join(',')) return;
    this.names.set(type, names);
    this.send(type, this.nonces.get(type) ?? '');
  }

  private receive(res: DiscoveryResponse): void {
    const type = res.type_url;
    let next: [string, string[]] | undefined;
    const arrivals: { cluster: string; usable: number }[] = [];
    try {
      if (type === TYPE.listener) next = [TYPE.cluster, unique(res.resources.flatMap(routedClusters))];
      else if (type === TYPE.cluster) next = [TYPE.endpoint, unique(res.resources.map(edsName))];
      else if (type === TYPE.endpoint) for (const r of res.resources) arrivals.push(this.assignment(r));
    } catch (e) {
      this.nacks++;
      this.nonces.set(type, res.nonce);
      return this.send(type, res.nonce, e instanceof Error ? e.message : String(e));
    }
    this.nonces.set(type, res.nonce);
    this.acked.set(type, res.version_info);
    this.send(type, res.nonce);
    this.acks[type] = (this.acks[type] ?? 0) + 1;
    const atMs = performance.now();
    for (const a of arrivals) this.onEds({ ...a, atMs });
    if (next) this.subscribe(...next);
  }

  private assignment(any: AnyMessage): { cluster: string; usable: number } {
    const msg = unpackAny(any) as Obj;
    const cluster = String(msg.cluster_name ?? '');
    const known = this.cla.get(cluster);
    if (known?.bytes.equals(any.value)) return { cluster, usable: known.usable };
    const eps = ((msg.endpoints ?? []) as Obj[]).flatMap((l) => (l.lb_endpoints ?? []) as Obj[]);
    const usable = eps.filter((e) => [undefined, 'UNKNOWN', 'HEALTHY'].includes(e.health_status as string));
    this.cla.set(cluster, { bytes: any.value, usable: usable.length });
    return { cluster, usable: usable.length };
  }
}

const unique = (xs: string[]) => [...new Set(xs)].sort();

/** The clusters a proxyless Listener's routes name (api_listener → HttpConnectionManager, inline routes). */
function routedClusters(any: AnyMessage): string[] {
  const listener = unpackAny(any) as { api_listener?: { api_listener?: AnyMessage } };
  const hcmAny = listener.api_listener?.api_listener;
  if (!hcmAny) throw new Error('listener without api_listener: not for a proxyless client');
  const hcm = unpackAny(hcmAny) as { route_config?: { virtual_hosts?: { routes?: Obj[] }[] } };
  const routes = (hcm.route_config?.virtual_hosts ?? []).flatMap((v) => v.routes ?? []);
  return routes.flatMap((r) => {
    const cluster = (r.route as Obj | undefined)?.cluster;
    return typeof cluster === 'string' ? [cluster] : [];
  });
}

/** The EDS service name of a Cluster (its own name when unset), which is what EDS is asked for. */
function edsName(any: AnyMessage): string {
  const c = unpackAny(any) as {
    name?: string;
    type?: string;
    eds_cluster_config?: { service_name?: string };
  };
  if (c.type !== 'EDS') throw new Error(`cluster ${c.name}: type ${c.type}, not EDS`);
  return c.eds_cluster_config?.service_name || String(c.name);
}
