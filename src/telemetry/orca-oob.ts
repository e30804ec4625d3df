import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { formatAddress, parseListenAddress } from '../grpc/address.js';
import type { OrcaReport } from '../grpc/orca.js';
import { STREAM_CORE_METRICS, orcaServiceDefinition } from '../grpc/orca-service.js';
import { errorMessage } from '../util/errors.js';
import { makeLogger } from '../util/log.js';
import { loopbackFor } from '../util/net.js';
import { systemTimers, type TimerHandle, type Timers } from '../util/timers.js';
import type { ResourceEndpoint, ResourceFigures, ResourceSource, TelemetrySettings } from './resources.js';

/** An endpoint's utilisation as ORCA reports it (0..1, may exceed 1). */
export interface OrcaLoad {
  cpu?: number;
  memory?: number;
}

/** Report streams to backends: one channel per target, released when no stream to it is wanted. */
export interface OrcaDialer {
  /** Opens a stream to `target` (host:port) asking for one report every `intervalMs`. */
  open(target: string, intervalMs: number): grpc.ClientReadableStream<OrcaReport>;
  release(target: string): void;
  close(): void;
}

/** Plaintext grpc-js channels, as routers dial backends. */
export function grpcOrcaDialer(): OrcaDialer {
  const clients = new Map<string, grpc.Client>();
  const def = orcaServiceDefinition().StreamCoreMetrics as grpc.MethodDefinition<
    { intervalMs: number },
    OrcaReport
  >;
  return {
    open(target, intervalMs) {
      let c = clients.get(target);
      if (!c) clients.set(target, (c = new grpc.Client(target, grpc.credentials.createInsecure())));
      return c.makeServerStreamRequest(STREAM_CORE_METRICS, def.requestSerialize, def.responseDeserialize, {
        intervalMs,
      });
    },
    release(target) {
      clients.get(target)?.close();
      clients.delete(target);
    },
    close() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}

interface Subscription {
  readonly pool: string;
  readonly address: string;
  readonly target: string;
  readonly intervalMs: number;
  stream?: grpc.ClientReadableStream<OrcaReport>;
  retry?: TimerHandle;
  failures: number;
  stopped: boolean;
}

interface OrcaSourceOptions {
  onLoad: (pool: string, address: string, load: OrcaLoad) => void;
  timers?: Timers;
  log?: Logger;
  /** Default: grpcOrcaDialer(). Closed when the source stops. */
  dialer?: OrcaDialer;
  /** After UNIMPLEMENTED (the backend serves no OpenRcaService), ask again this much later (default 10 min). */
  unimplementedRetryMs?: number;
}

/**
 * Out-of-band ORCA (gRFC A51): for each endpoint of a pool with spec.telemetry.orca, the operator
 * keeps a StreamCoreMetrics stream open asking for a report every orcaInterval, and passes each
 * report's CPU and memory utilisation on (to the fleet view, where they stand beside those routers
 * relay from trailers). A backend that does not serve the service answers UNIMPLEMENTED and is asked
 * again only much later; a stream that fails otherwise is reopened after an interval, backing off to
 * ten intervals while it keeps failing. It is a ResourceSource for its lifecycle (track per reconcile,
 * untrack, stop) but has no cores or bytes to give: figures() is always empty.
 */
export class OrcaSource implements ResourceSource {
  private readonly subs = new Map<string, Map<string, Subscription>>(); // pool → address → stream
  private readonly timers: Timers;
  private readonly log: Logger;
  private readonly dialer: OrcaDialer;
  private stopped = false;

  constructor(private readonly o: OrcaSourceOptions) {
    this.timers = o.timers ?? systemTimers;
    this.log = o.log ?? makeLogger('telemetry-orca');
    this.dialer = o.dialer ?? grpcOrcaDialer();
  }

  track(poolKey: string, endpoints: readonly ResourceEndpoint[], settings: TelemetrySettings): void {
    if (this.stopped) return;
    if (!settings.orca) return this.untrack(poolKey);
    const known = this.subs.get(poolKey) ?? new Map<string, Subscription>();
    this.subs.set(poolKey, known);
    const wanted = new Map<string, string>();
    for (const e of endpoints) {
      try {
        const { host, port } = parseListenAddress(e.address, `endpoint ${e.address}`);
        wanted.set(e.address, formatAddress(loopbackFor(host) ?? host, port));
      } catch (err) {
        this.log.debug({ pool: poolKey, err: errorMessage(err) }, 'endpoint not subscribed to');
      }
    }
    for (const [address, s] of known)
      if (wanted.get(address) !== s.target || s.intervalMs !== settings.orcaIntervalMs)
        this.drop(known, address);
    for (const [address, target] of wanted) {
      if (known.has(address)) continue;
      const s: Subscription = {
        pool: poolKey,
        address,
        target,
        intervalMs: settings.orcaIntervalMs,
        failures: 0,
        stopped: false,
      };
      known.set(address, s);
      this.open(s);
    }
  }

  untrack(poolKey: string): void {
    const known = this.subs.get(poolKey);
    if (!known) return;
    for (const address of [...known.keys()]) this.drop(known, address);
    this.subs.delete(poolKey);
  }

  figures(): ReadonlyMap<string, ResourceFigures> {
    return new Map();
  }

  /** Streams open now, for tests and status. */
  streams(): number {
    let n = 0;
    for (const known of this.subs.values()) for (const s of known.values()) if (s.stream) n++;
    return n;
  }

  stop(): void {
    this.stopped = true;
    for (const key of [...this.subs.keys()]) this.untrack(key);
    this.dialer.close();
  }

  private drop(known: Map<string, Subscription>, address: string): void {
    const s = known.get(address);
    if (!s) return;
    s.stopped = true;
    if (s.retry !== undefined) this.timers.clearTimeout(s.retry);
    s.stream?.cancel();
    known.delete(address);
    const used = [...this.subs.values()].some((k) => [...k.values()].some((x) => x.target === s.target));
    if (!used) this.dialer.release(s.target);
  }

  private open(s: Subscription): void {
    s.retry = undefined;
    const stream = this.dialer.open(s.target, s.intervalMs);
    s.stream = stream;
    stream.on('data', (r: OrcaReport) => {
      s.failures = 0;
      const load: OrcaLoad = {
        ...(r.cpuUtilization !== undefined ? { cpu: r.cpuUtilization } : {}),
        ...(r.memUtilization !== undefined ? { memory: r.memUtilization } : {}),
      };
      if (load.cpu !== undefined || load.memory !== undefined) this.o.onLoad(s.pool, s.address, load);
    });
    stream.on('error', (e: grpc.ServiceError) => this.ended(s, stream, e));
    stream.on('end', () => this.ended(s, stream));
  }

  /** The stream ended (an error, or the server closed it): open it again later, unless dropped. */
  private ended(s: Subscription, stream: grpc.ClientReadableStream<OrcaReport>, e?: grpc.ServiceError): void {
    if (s.stopped || s.stream !== stream || s.retry !== undefined) return;
    s.stream = undefined;
    s.failures++;
    let delay = s.intervalMs * Math.min(10, 2 ** (s.failures - 1));
    if (e?.code === grpc.status.UNIMPLEMENTED) {
      delay = this.o.unimplementedRetryMs ?? 600_000;
      this.log.debug({ pool: s.pool, endpoint: s.address }, 'no out-of-band ORCA there');
    } else if (s.failures === 1) {
      const err = e ? errorMessage(e) : 'stream ended';
      this.log.info({ pool: s.pool, endpoint: s.address, err }, 'ORCA stream ended; reopening');
    }
    s.retry = this.timers.setTimeout(() => {
      if (!s.stopped && !this.stopped) this.open(s);
    }, delay);
  }
}
