import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_BOUNDS_MS } from '../../telemetry/histogram.js';
import type { Slots } from './slots.js';

/** Go's codes.Code.String(), the grpc_code values go-grpc-middleware exports. */
const GO_CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** The Demo service's methods and their gRPC types, as go-grpc-middleware labels them. */
const GRPC_TYPE: Record<string, string> = {
  Echo: 'unary',
  ServerStream: 'server_stream',
  ClientStream: 'client_stream',
  BidiStream: 'bidi_stream',
};
const SERVICE = 'sibyl.demo.v1.Demo';
type GrpcLabels = 'grpc_service' | 'grpc_method' | 'grpc_type';

/**
 * The backend's Prometheus series. Each backend has its own registry (tests run several in one
 * process); the process series (process_cpu_seconds_total, process_resident_memory_bytes) come from
 * prom-client's default metrics, which is what the operator's telemetry scrapes (docs/architecture.md, "API", telemetry).
 * The grpc_server_* series are go-grpc-middleware's (providers/prometheus, server metrics with the
 * handling-time histogram on), with the shared latency bounds as buckets (go-grpc-middleware takes
 * its buckets as an option): the operator reads calls, errors and latency from them.
 */
export class BackendMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'code'>;
  private readonly started: Counter<GrpcLabels>;
  private readonly handled: Counter<GrpcLabels | 'grpc_code'>;
  private readonly handling: Histogram<GrpcLabels>;
  /** Out-of-band ORCA streams open (OpenRcaService/StreamCoreMetrics), until the client cancels. */
  readonly orcaStreams: Gauge;

  constructor(slots: Slots, opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'sibyl_backend_requests_total',
      help: 'Calls served, by method and gRPC status code.',
      labelNames: ['method', 'code'],
      registers: [this.registry],
    });
    const grpcLabels: GrpcLabels[] = ['grpc_service', 'grpc_method', 'grpc_type'];
    this.started = new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: grpcLabels,
      registers: [this.registry],
    });
    this.handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...grpcLabels, 'grpc_code'],
      registers: [this.registry],
    });
    this.handling = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames: grpcLabels,
      buckets: LATENCY_BOUNDS_MS.filter(Number.isFinite).map((ms) => ms / 1000),
      registers: [this.registry],
    });
    new Gauge({
      name: 'sibyl_backend_inflight',
      help: 'Calls holding a slot.',
      registers: [this.registry],
      collect() {
        this.set(slots.busy);
      },
    });
    this.orcaStreams = new Gauge({
      name: 'sibyl_backend_orca_streams',
      help: 'Out-of-band ORCA report streams open.',
      registers: [this.registry],
    });
    new Gauge({
      name: 'sibyl_backend_queued',
      help: 'Calls waiting for a slot.',
      registers: [this.registry],
      collect() {
        this.set(slots.queued);
      },
    });
  }

  /** A call began (grpc_server_started_total). */
  callStarted(method: string): void {
    this.started.inc(this.labels(method));
  }

  /** A call ended with `code` after `seconds` (grpc_server_handled_total, grpc_server_handling_seconds). */
  callHandled(method: string, code: number, seconds: number): void {
    const labels = this.labels(method);
    this.handled.inc({ ...labels, grpc_code: GO_CODE_NAMES[code] ?? String(code) });
    this.handling.observe(labels, seconds);
  }

  private labels(method: string): Record<GrpcLabels, string> {
    return { grpc_service: SERVICE, grpc_method: method, grpc_type: GRPC_TYPE[method] ?? 'unary' };
  }
}
