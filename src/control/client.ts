import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Backoff, DEFAULT_BACKOFF } from '../util/backoff.js';
import type { Clock, Random } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Timers } from '../util/timers.js';
import type { ControlMessage, LoadReport, OutgoingRouter, WireModel, WirePool } from './messages.js';
import { controlClientConstructor } from './proto.js';
import { applyDelta } from './delta.js';

export interface ControlClientOptions {
  /** host:port of the operator's control API. */
  address: string;
  /** PEM of the CA that signed the operator's certificate; absent = plaintext (tests, local runs only). */
  ca?: Buffer;
  /** Name the certificate must carry when it differs from the address's host. */
  serverName?: string;
  /** The ServiceAccount token, read again at every connect (tokens rotate). */
  token: () => Promise<string>;
  routerId: string;
  namespace: string;
  version: string;
  /** host:port where data planes reach this router (Envoy sends it a CacheTier's cacheable methods). */
  advertise?: string;
  /** Applies a routing world atomically; returns an error message to nack with, or undefined. */
  apply: (pools: readonly WirePool[], version: number, model: WireModel | undefined) => string | undefined;
  /** The load since the last call (the client adds routerId and version). */
  report: () => Omit<LoadReport, 'routerId' | 'routingVersion' | 'intervalMs'>;
  log: Logger;
  clock: Clock;
  timers: Timers;
  random: Random;
}

export function tokenFromFile(path: string): () => Promise<string> {
  return async () => (await readFile(path, 'utf8')).trim();
}

/**
 * The router's side of the control stream: subscribe, apply each snapshot or delta atomically and
 * ack it (nack with the reason when it cannot be applied: the table in force stays), send load
 * reports, and reconnect with backoff. While the operator is away the router keeps routing with the
 * last table it applied (static stability).
 */
export class ControlClient {
  private pools = new Map<string, WirePool>();
  private model: WireModel | undefined;
  private appliedVersion = 0;
  private call?: grpc.ClientDuplexStream<OutgoingRouter, ControlMessage>;
  private client?: grpc.Client;
  private reportTimer: unknown;
  private retryTimer: unknown;
  private reportIntervalMs = 5000;
  private stopped = false;
  private readonly backoff: Backoff;
  connected = false;
  /** Applied updates, for tests and metrics. */
  applied = 0;

  constructor(private readonly o: ControlClientOptions) {
    this.backoff = new Backoff({ ...DEFAULT_BACKOFF, initialMs: 250, maxMs: 15_000 }, o.random);
  }

  get version(): number {
    return this.appliedVersion;
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.o.timers.clearTimeout(this.reportTimer);
    this.o.timers.clearTimeout(this.retryTimer);
    this.call?.cancel();
    this.client?.close();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let token: string;
    try {
      token = await this.o.token();
    } catch (e) {
      this.o.log.error({ err: errorMessage(e) }, 'cannot read the ServiceAccount token');
      return this.retry();
    }
    const Ctor = controlClientConstructor();
    const creds = this.o.ca ? grpc.credentials.createSsl(this.o.ca) : grpc.credentials.createInsecure();
    const opts: grpc.ClientOptions = {
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
    };
    if (this.o.serverName) opts['grpc.ssl_target_name_override'] = this.o.serverName;
    this.client?.close();
    this.client = new Ctor(this.o.address, creds, opts);
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const call = (
      this.client as unknown as {
        subscribe(md: grpc.Metadata): grpc.ClientDuplexStream<OutgoingRouter, ControlMessage>;
      }
    ).subscribe(md);
    this.call = call;
    call.on('data', (m: ControlMessage) => this.onMessage(m));
    call.on('error', (e: grpc.ServiceError) =>
      this.lost(call, `${grpc.status[e.code] ?? e.code}: ${e.details}`),
    );
    call.on('end', () => this.lost(call, 'stream ended'));
    call.write({
      hello: {
        routerId: this.o.routerId,
        namespace: this.o.namespace,
        version: this.o.version,
        routingVersion: this.appliedVersion,
        advertise: this.o.advertise ?? '',
      },
    });
  }

  private lost(call: grpc.ClientDuplexStream<OutgoingRouter, ControlMessage>, why: string): void {
    if (call !== this.call) return;
    this.call = undefined;
    if (this.connected)
      this.o.log.warn(
        { reason: why, version: this.appliedVersion },
        'control stream lost; routing with the last table',
      );
    else this.o.log.warn({ reason: why }, 'control stream refused or unreachable');
    this.connected = false;
    this.o.timers.clearTimeout(this.reportTimer);
    this.retry();
  }

  private retry(): void {
    if (this.stopped) return;
    this.retryTimer = this.o.timers.setTimeout(() => void this.connect(), this.backoff.next());
  }

  private onMessage(m: ControlMessage): void {
    if (!this.connected) {
      this.connected = true;
      this.backoff.reset();
      this.scheduleReport();
    }
    let pools: Map<string, WirePool>;
    let version: number;
    let model: WireModel | undefined;
    if (m.msg === 'snapshot') {
      pools = new Map(m.snapshot.pools.map((p) => [p.name, p]));
      version = m.snapshot.version;
      model = m.snapshot.model ?? this.model;
      this.reportIntervalMs = m.snapshot.reportIntervalMs || this.reportIntervalMs;
    } else {
      if (m.delta.baseVersion !== this.appliedVersion) {
        return this.send({
          nack: {
            routingVersion: m.delta.version,
            error: `delta from ${m.delta.baseVersion}, but this router holds ${this.appliedVersion}`,
          },
        });
      }
      pools = applyDelta(this.pools, m.delta.upserts, m.delta.removed);
      version = m.delta.version;
      model = m.delta.model ?? this.model;
    }
    let error: string | undefined;
    try {
      error = this.o.apply([...pools.values()], version, model ?? undefined);
    } catch (e) {
      error = errorMessage(e);
    }
    if (error) {
      this.o.log.warn({ version, error }, 'routing update refused; keeping the table in force');
      return this.send({ nack: { routingVersion: version, error } });
    }
    this.pools = pools;
    this.model = model ?? undefined;
    this.appliedVersion = version;
    this.applied++;
    this.send({ ack: { routingVersion: version } });
  }

  private scheduleReport(): void {
    this.o.timers.clearTimeout(this.reportTimer);
    this.reportTimer = this.o.timers.setTimeout(() => {
      if (!this.connected) return;
      const r = this.o.report();
      this.send({
        load: {
          ...r,
          routerId: this.o.routerId,
          routingVersion: this.appliedVersion,
          intervalMs: this.reportIntervalMs,
        },
      });
      this.scheduleReport();
    }, this.reportIntervalMs);
  }

  private send(m: OutgoingRouter): void {
    try {
      this.call?.write(m);
    } catch (e) {
      this.o.log.warn({ err: errorMessage(e) }, 'control stream write failed');
    }
  }
}
