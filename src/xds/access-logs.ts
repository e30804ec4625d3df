import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type protobuf from 'protobufjs';
import { admitStream, type RouterAuthenticator } from '../control/auth.js';
import { AccessLogAggregator, type AccessLogReport } from '../telemetry/als.js';
import type { Random } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { TimerHandle, Timers } from '../util/timers.js';
import { loggedAttempt, type AccessLogEntry } from './access-log-entry.js';
import { xdsRoot, type XdsNode } from './proto.js';

const ALS = 'envoy.service.accesslog.v3.AccessLogService';

/** StreamAccessLogsMessage as decoded here (snake_case; the identifier only on a stream's first message). */
interface StreamAccessLogsMessage {
  identifier?: { node?: XdsNode; log_name?: string };
  http_logs?: { log_entry?: AccessLogEntry[] };
  tcp_logs?: unknown;
}

const DECODE: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: false };

/** AccessLogService's one method: a client stream of log batches, answered (empty) when it ends. */
export function accessLogServiceDefinition(): grpc.ServiceDefinition {
  const req = xdsRoot().lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const res = xdsRoot().lookupType('envoy.service.accesslog.v3.StreamAccessLogsResponse');
  return {
    StreamAccessLogs: {
      path: `/${ALS}/StreamAccessLogs`,
      requestStream: true,
      responseStream: false,
      requestSerialize: (m: object) => Buffer.from(req.encode(req.fromObject(m)).finish()),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), DECODE),
      responseSerialize: (m: object) => Buffer.from(res.encode(res.fromObject(m)).finish()),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), DECODE),
    },
  };
}

interface AccessLogServiceOptions {
  /** The control API's authentication (as ADS); absent only with allowUnauthenticated. */
  auth?: RouterAuthenticator;
  serving?: () => boolean;
  log: Logger;
  timers: Timers;
  random: Random;
  /** Each Envoy's calls are reported once per interval (the routers' report interval). */
  intervalMs: number;
  /** The pool and endpoint address an upstream cluster and socket address are, when sibyl serves them. */
  locate: (cluster: string, host: string, port: number) => { pool: string; address: string } | undefined;
  onReport: (r: AccessLogReport) => void;
}

type Stream = grpc.ServerReadableStream<StreamAccessLogsMessage, object>;

/**
 * The operator's end of Envoy's gRPC access log service (envoy.service.accesslog.v3), on the control
 * API's server beside ADS and admitted the same way. Each stream is one Envoy: its upstream attempts
 * are counted per pool and endpoint (telemetry/als.ts) and reported once per interval as that Envoy,
 * as a router reports its own; entries for clusters sibyl does not serve are skipped.
 */
export class AccessLogService {
  constructor(private readonly o: AccessLogServiceOptions) {}

  addToServer(server: grpc.Server): void {
    server.addService(accessLogServiceDefinition(), {
      StreamAccessLogs: (call: Stream, callback: grpc.sendUnaryData<object>) =>
        void this.stream(call, callback),
    });
  }

  private async stream(call: Stream, callback: grpc.sendUnaryData<object>): Promise<void> {
    const { o } = this;
    const account = await admitStream(call, {
      ...(o.serving ? { serving: o.serving } : {}),
      ...(o.auth ? { auth: o.auth } : {}),
      log: o.log,
      client: 'access log stream',
    });
    if (account === undefined) return;
    const agg = new AccessLogAggregator(o.random);
    let reporter: string | undefined;
    let timer: TimerHandle | undefined;
    let skipped = 0;
    let refused = false;
    const flush = () => {
      const r = reporter && agg.drain(reporter, o.intervalMs);
      if (r) o.onReport(r);
    };
    const tick = () => {
      flush();
      timer = o.timers.setTimeout(tick, o.intervalMs);
    };
    call.on('data', (m: StreamAccessLogsMessage) => {
      if (refused) return;
      if (!reporter) {
        const node = m.identifier?.node;
        if (!node?.id) {
          refused = true;
          call.emit('error', {
            code: grpc.status.INVALID_ARGUMENT,
            details: 'the first message must carry identifier.node',
            metadata: new grpc.Metadata(),
          });
          return;
        }
        reporter = `envoy/${node.id}`;
        o.log.info({ node: node.id, account }, 'access log stream opened');
        timer = o.timers.setTimeout(tick, o.intervalMs);
      }
      for (const entry of m.http_logs?.log_entry ?? []) {
        const a = loggedAttempt(entry);
        const where = a && o.locate(a.cluster, a.host, a.port);
        if (!a || !where) {
          skipped++;
          continue;
        }
        agg.record({
          ...where,
          code: a.code,
          latencyMs: a.latencyMs,
          requestBytes: a.requestBytes,
          ...(a.method ? { method: a.method } : {}),
        });
      }
    });
    const end = () => {
      if (timer !== undefined) o.timers.clearTimeout(timer);
      timer = undefined;
      flush();
      if (reporter) o.log.info({ reporter, skipped }, 'access log stream closed');
      reporter = undefined;
    };
    call.on('end', () => {
      end();
      callback(null, {});
    });
    call.on('cancelled', end);
    call.on('error', (e) => {
      o.log.debug({ err: errorMessage(e) }, 'access log stream error');
      end();
    });
  }
}
