import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Timers } from '../util/timers.js';
import type { RouterAuthenticator } from './auth.js';
import type { ControlMessage, LoadReport, OutgoingControl, RouterMessage } from './messages.js';
import { controlServiceDefinition } from './proto.js';
import { PushScheduler } from './push-scheduler.js';
import type { RoutingChange, RoutingState } from './routing-state.js';

/** How often routers report their load unless told otherwise. */
export const DEFAULT_REPORT_INTERVAL_MS = 5000;

export interface ControlServerOptions {
  state: RoutingState;
  auth: RouterAuthenticator;
  clock: Clock;
  timers: Timers;
  log: Logger;
  /** Routine pushes per router at most once per interval (default 1 s). */
  pushIntervalMs?: number;
  /** What routers are asked to report at (default 5 s). */
  reportIntervalMs?: number;
  /** Only the leader serves; a standby answers UNAVAILABLE so routers go elsewhere. */
  serving: () => boolean;
  onLoad: (report: LoadReport) => void;
  onNack?: (routerId: string, version: number, error: string) => void;
  onRoutersChanged?: (routers: RouterSessionInfo[]) => void;
}

export interface RouterSessionInfo {
  routerId: string;
  account: string;
  namespace: string;
  /** Where data planes reach its gRPC listener; empty: not offered. */
  advertise: string;
  ackedVersion: number;
  sentVersion: number;
  /** Pushes and bytes sent to this router (control traffic). */
  pushes: number;
  bytes: number;
}

type Call = grpc.ServerDuplexStream<RouterMessage, OutgoingControl>;

/** One subscribed router: what it was sent, what it acknowledged, when to push next. */
class Session {
  sentVersion = 0;
  ackedVersion = 0;
  modelSent: string | undefined;
  full = true; // the next push is a full snapshot
  pushes = 0;
  bytes = 0;
  readonly scheduler: PushScheduler;

  constructor(
    readonly call: Call,
    readonly info: { routerId: string; account: string; namespace: string; advertise: string },
    private readonly o: ControlServerOptions & { serialize: (m: OutgoingControl) => number },
  ) {
    this.scheduler = new PushScheduler(o.pushIntervalMs ?? 1000, o.clock, o.timers, () => this.push());
  }

  admits = (pool: string): boolean => !this.info.namespace || pool.startsWith(`${this.info.namespace}/`);

  push(): void {
    const { state } = this.o;
    if (!this.full && state.version === this.sentVersion) return;
    let msg: OutgoingControl;
    if (this.full) {
      msg = { snapshot: state.snapshot(this.admits, this.o.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS) };
      this.full = false;
    } else {
      const delta = state.delta(this.sentVersion, this.admits, this.modelSent);
      msg = { delta };
    }
    const model = 'snapshot' in msg ? msg.snapshot.model : msg.delta.model;
    if (model) this.modelSent = model.version;
    this.sentVersion = state.version;
    this.pushes++;
    this.bytes += this.o.serialize(msg);
    this.call.write(msg);
  }
}

/**
 * The operator's side of RoutingControl.Subscribe: authenticate, send the full snapshot, then push
 * changes (urgent at once, routine coalesced per router), and take acks, nacks and load reports.
 */
export class ControlServer {
  readonly server = new grpc.Server({
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  private readonly sessions = new Set<Session>();
  private readonly serialize: (m: OutgoingControl) => number;
  private unsubscribe?: () => void;
  port = 0;

  constructor(private readonly o: ControlServerOptions) {
    const def = controlServiceDefinition();
    const encode = (def.Subscribe as grpc.MethodDefinition<RouterMessage, OutgoingControl>).responseSerialize;
    this.serialize = (m) => encode(m).length;
    this.server.addService(def, {
      Subscribe: (call: Call) => void this.subscribe(call),
    });
  }

  async listen(addr: string, creds: grpc.ServerCredentials): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(addr, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.unsubscribe = this.o.state.onChange((c) => this.changed(c));
    return this.port;
  }

  routers(): RouterSessionInfo[] {
    return [...this.sessions].map((s) => ({
      ...s.info,
      ackedVersion: s.ackedVersion,
      sentVersion: s.sentVersion,
      pushes: s.pushes,
      bytes: s.bytes,
    }));
  }

  /** Routers whose namespace filter admits the pool. */
  routersFor(pool: string): number {
    return [...this.sessions].filter((s) => s.admits(pool)).length;
  }

  /**
   * The data-plane addresses of the routers that serve the pool and have applied a table (so they know
   * it), sorted: where Envoy may send the pool's cacheable methods. A router that advertises nothing is
   * left out; one that advertises the same address twice (a reconnect racing its old stream) counts once.
   */
  routerAddressesFor(pool: string): string[] {
    const out = new Set<string>();
    for (const s of this.sessions)
      if (s.info.advertise && s.ackedVersion > 0 && s.admits(pool)) out.add(s.info.advertise);
    return [...out].sort();
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    for (const s of this.sessions) {
      s.scheduler.stop();
      s.call.end();
    }
    await new Promise<void>((r) => this.server.tryShutdown(() => r()));
  }

  private changed(c: RoutingChange): void {
    for (const s of this.sessions) if (!c.pool || s.admits(c.pool)) s.scheduler.notify(c.urgent);
  }

  private fail(call: Call, code: grpc.status, details: string): void {
    call.emit('error', { code, details, metadata: new grpc.Metadata() });
  }

  private async subscribe(call: Call): Promise<void> {
    if (!this.o.serving())
      return this.fail(call, grpc.status.UNAVAILABLE, 'this operator replica is a standby; try the leader');
    let auth;
    try {
      auth = await this.o.auth.check(call.metadata);
    } catch (e) {
      this.o.log.warn({ err: errorMessage(e) }, 'token review failed');
      return this.fail(call, grpc.status.UNAVAILABLE, `cannot review the token now: ${errorMessage(e)}`);
    }
    if (!auth.ok) {
      this.o.log.warn({ account: auth.username, reason: auth.message }, 'router refused');
      return this.fail(call, auth.code ?? grpc.status.UNAUTHENTICATED, auth.message ?? 'refused');
    }
    let session: Session | undefined;
    call.on('data', (m: RouterMessage) => {
      if (m.msg === 'hello') {
        if (session) return;
        session = new Session(
          call,
          {
            routerId: m.hello.routerId,
            account: auth.username ?? '',
            namespace: m.hello.namespace,
            advertise: m.hello.advertise ?? '',
          },
          { ...this.o, serialize: this.serialize },
        );
        this.sessions.add(session);
        this.o.log.info(
          { router: m.hello.routerId, account: auth.username, namespace: m.hello.namespace || '(all)' },
          'router subscribed',
        );
        this.o.onRoutersChanged?.(this.routers());
        session.push();
        return;
      }
      if (!session) return this.fail(call, grpc.status.FAILED_PRECONDITION, 'send Hello first');
      if (m.msg === 'ack') {
        const first = session.ackedVersion === 0 && m.ack.routingVersion > 0;
        session.ackedVersion = Math.max(session.ackedVersion, m.ack.routingVersion);
        // A router that advertises a data-plane address is offered to Envoy once it has a table.
        if (first && session.info.advertise) this.o.onRoutersChanged?.(this.routers());
      } else if (m.msg === 'nack') {
        this.o.log.warn(
          { router: session.info.routerId, version: m.nack.routingVersion, error: m.nack.error },
          'router refused a routing update',
        );
        this.o.onNack?.(session.info.routerId, m.nack.routingVersion, m.nack.error);
        // The router keeps its old table. The same content would be refused again, so the next
        // change goes out as a full snapshot rather than resending this one now.
        session.full = true;
      } else if (m.msg === 'load') {
        this.o.onLoad({ ...m.load, routerId: session.info.routerId });
      }
    });
    const end = () => {
      if (!session) return;
      session.scheduler.stop();
      this.sessions.delete(session);
      this.o.log.info({ router: session.info.routerId }, 'router left');
      this.o.onRoutersChanged?.(this.routers());
      session = undefined;
    };
    call.on('end', () => {
      end();
      call.end();
    });
    call.on('cancelled', end);
    call.on('error', (e) => {
      this.o.log.debug({ err: errorMessage(e) }, 'control stream error');
      end();
    });
  }
}

export type { ControlMessage };
