import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { admitStream, type RouterAuthenticator } from '../control/auth.js';
import { PushScheduler } from '../control/push-scheduler.js';
import type { Clock } from '../util/clock.js';
import { SibylError, errorMessage } from '../util/errors.js';
import type { Timers } from '../util/timers.js';
import {
  XdsClients,
  kindOf,
  type XdsClient,
  type XdsClientInfo,
  type XdsNack,
  type XdsPoolView,
} from './clients.js';
import {
  adsServiceDefinition,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type XdsNode,
} from './proto.js';
import { XdsResources, type ResourceMutator } from './resources.js';
import { XdsSession, type NackRecord } from './session.js';
import { XdsMetrics } from './metrics.js';
import { SHORT, type TypeUrl, type XdsPoolInput } from './types.js';

export interface XdsServerOptions {
  /** ServiceAccount-token authentication, the control API's own; required unless allowUnauthenticated. */
  auth?: RouterAuthenticator;
  /** Serve clients without a token: local plaintext runs only. */
  allowUnauthenticated?: boolean;
  clock: Clock;
  timers: Timers;
  log: Logger;
  /** Routine pushes per client at most once per interval (default 1 s); urgent ones go at once. */
  pushIntervalMs?: number;
  /** Only the leader serves; a standby answers UNAVAILABLE so clients go elsewhere. */
  serving?: () => boolean;
  /** A client refused a response: the pools whose resources it refused, and its error detail. */
  onNack?: (nack: XdsNack) => void;
  /** Clients connected or left. */
  onClientsChanged?: () => void;
  /** Where sibyl_xds_* metrics go (the operator's registry). */
  registry?: Registry;
  /** Tests only: change resources before they are encoded (see ResourceMutator). */
  mutate?: ResourceMutator;
}

type Stream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/**
 * sibyl's xDS control plane: AggregatedDiscoveryService, state of the world, on the control API's
 * gRPC server (same port, TLS and token authentication). Each BackendPool becomes a Listener, Cluster
 * and ClusterLoadAssignment for proxyless gRPC clients, and a Cluster plus routes on its fleet's
 * Listener for Envoys. Pushes follow the router's control stream: urgent changes (an endpoint gone, a
 * breaker opened) at once, refreshed weights at most once per push interval per client
 * (src/control/push-scheduler.ts).
 */
export class XdsServer {
  private readonly resources: XdsResources;
  private readonly connected: XdsClients;
  private readonly metrics?: XdsMetrics;
  private generation = 0;
  private seq = 0;

  constructor(private readonly o: XdsServerOptions) {
    if (!o.auth && !o.allowUnauthenticated)
      throw new SibylError(
        'ERR_CONFIG_INVALID',
        'the xDS server needs an authenticator, or allowUnauthenticated for local runs',
      );
    this.resources = new XdsResources(o.mutate);
    this.connected = new XdsClients(this.resources);
    if (o.registry) this.metrics = new XdsMetrics(o.registry, () => this.connected.all());
  }

  /** Adds the ADS service to `server` (the control API's), before it binds. */
  addToServer(server: grpc.Server): void {
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: Stream) => void this.stream(call),
    });
  }

  /** Sets (or with undefined removes) a pool; clients it concerns are pushed to as urgency says. */
  setPool(key: string, input: XdsPoolInput | undefined): void {
    const { changed, urgent } = this.resources.set(key, input);
    if (!changed) return;
    this.generation++;
    for (const c of this.connected.all()) c.scheduler.notify(urgent);
  }

  /** Connected clients: kind, node, versions acknowledged and the last refusal per type. */
  clients(): XdsClientInfo[] {
    return this.connected.info();
  }

  /** What the data planes have of one pool (for `kubectl describe bp`). */
  pool(key: string): XdsPoolView | undefined {
    return this.connected.pool(key);
  }

  /** Ends every stream (the gRPC server itself belongs to the caller). */
  close(): void {
    for (const c of this.connected.all()) {
      c.scheduler.stop();
      c.call.end();
    }
  }

  private connect(node: XdsNode, account: string, call: Stream): XdsClient {
    const session = new XdsSession(kindOf(node) === 'envoy');
    const scheduler = new PushScheduler(this.o.pushIntervalMs ?? 1000, this.o.clock, this.o.timers, () =>
      this.push(client),
    );
    const client = this.connected.add({ id: `${++this.seq}`, node, account, session, call, scheduler });
    this.o.log.info({ node: node.id, kind: client.kind, account }, 'xds client connected');
    if (client.view === 'envoy' && !client.fleet)
      this.o.log.warn(
        { node: node.id },
        'an Envoy without node metadata sibyl.dev/listen gets clusters but no listener (use sibyl xds-bootstrap)',
      );
    this.o.onClientsChanged?.();
    return client;
  }

  /** Sends the client every type it asked for whose content changed for it. */
  private push(c: XdsClient): void {
    const all = this.resources.all(c.view, c.fleet);
    for (const type of c.session.requested()) {
      const res = c.session.respond(type, all, this.generation);
      if (!res) continue;
      c.call.write(res);
      this.metrics?.responses.inc({ kind: c.kind, type: SHORT[type as TypeUrl] ?? type });
    }
  }

  private refused(c: XdsClient, nack: NackRecord): void {
    this.o.log.warn({ node: c.node.id, type: nack.typeUrl, detail: nack.detail }, 'xds client refused');
    for (const n of this.connected.nacked(c, nack)) {
      this.metrics?.rejected.inc({
        pool: n.pool,
        kind: n.client.kind,
        type: SHORT[n.typeUrl as TypeUrl] ?? n.typeUrl,
      });
      this.o.onNack?.(n);
    }
  }

  private fail(call: Stream, code: grpc.status, details: string): void {
    call.emit('error', { code, details, metadata: new grpc.Metadata() });
  }

  private async stream(call: Stream): Promise<void> {
    const account = await admitStream(call, {
      ...(this.o.serving ? { serving: this.o.serving } : {}),
      ...(this.o.auth && !this.o.allowUnauthenticated ? { auth: this.o.auth } : {}),
      log: this.o.log,
      client: 'xds client',
    });
    if (account === undefined) return;
    let client: XdsClient | undefined;
    call.on('data', (req: DiscoveryRequest) => {
      if (!client) {
        if (!req.node)
          return this.fail(call, grpc.status.INVALID_ARGUMENT, 'the first request must carry node');
        client = this.connect(req.node, account, call);
      }
      const { outcome, nack } = client.session.receive(req);
      if (outcome === 'stale') return;
      if (nack) this.refused(client, nack);
      this.push(client);
    });
    const end = () => {
      if (!client) return;
      client.scheduler.stop();
      this.connected.remove(client);
      this.o.log.info({ node: client.node.id }, 'xds client left');
      client = undefined;
      this.o.onClientsChanged?.();
    };
    call.on('end', () => {
      end();
      call.end();
    });
    call.on('cancelled', end);
    call.on('error', (e) => {
      this.o.log.debug({ err: errorMessage(e) }, 'xds stream error');
      end();
    });
  }
}
