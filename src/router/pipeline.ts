import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import type { CallOutcome, PickRequest } from '../balancer/types.js';
import type { Clock } from '../util/clock.js';
import { Status, isServerFault, statusName } from '../grpc/status.js';
import { formatGrpcTimeout, parseGrpcTimeout } from '../grpc/timeout.js';
import type { FrameError } from '../grpc/framing.js';
import type { OrcaReport } from '../grpc/orca.js';
import { Attempt, isGrpcContentType, type AttemptResult } from './attempt.js';
import { Downstream } from './downstream.js';
import { headerValue, upstreamRequestHeaders } from './headers.js';
import type { RouterMetrics } from './metrics.js';
import type { EndpointState, PoolState } from './pool-state.js';
import { RequestBody } from './request-body.js';
import { priorityOf } from './admission.js';
import { matchPool, splitMethod, type PoolRoute, type RoutingTable } from './table.js';

/**
 * The per-call pipeline (DESIGN.md §4): check the request → match a pool → admission → pick → forward
 * → retry on another endpoint where allowed → record the outcome. Each step is a method here; the parts
 * other modules own come in through each pool's seams (seams.ts): `admission` (src/limit) and `gate`
 * (src/breaker). The cache and hedging will slot in between admission and pick and around `forward`.
 */
export interface PipelineOptions {
  maxMessageBytes: number;
  /** Request bytes kept for a retry; a longer request body cannot be retried. */
  retryBufferBytes: number;
}

export interface PipelineEnv {
  table(): RoutingTable;
  pool(name: string): PoolState | undefined;
  metrics: RouterMetrics;
  log: Logger;
  clock: Clock;
  options: PipelineOptions;
}

let nextCallId = 1;

/** Handles one incoming stream to completion; never throws (every failure becomes a gRPC status). */
export function handleStream(
  env: PipelineEnv,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): void {
  const call = new CallPipeline(env, stream, headers);
  call.run().catch((e: unknown) => call.internalError(e));
}

class CallPipeline {
  private readonly id = nextCallId++;
  private readonly startMs: number;
  private readonly down: Downstream;
  private readonly path: string;
  private readonly log: Logger;
  private body: RequestBody | undefined;
  private attempt: Attempt | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private deadlineAtMs = Infinity;
  private poolName = 'none';

  constructor(
    private readonly env: PipelineEnv,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
  ) {
    this.startMs = env.clock.now();
    this.path = headerValue(headers, ':path') ?? '';
    this.log = env.log.child({ call: this.id, method: this.path });
    this.down = new Downstream(stream, this.log);
    stream.on('error', (e) => this.log.debug({ err: e.message }, 'client stream error'));
    stream.once('close', () => {
      if (!this.down.isFinished || this.down.code === undefined)
        this.attempt?.cancel(Status.CANCELLED, 'client cancelled the call');
      clearTimeout(this.deadline);
    });
  }

  async run(): Promise<void> {
    const route = this.admitRequest();
    if (!route) return;
    const pool = this.env.pool(route.name);
    if (!pool) return this.refuse(Status.UNAVAILABLE, `pool ${route.name} is not ready`, 'no-pool');
    this.poolName = route.name;
    this.env.metrics.inflight.inc({ pool: route.name });
    let code: number = Status.UNKNOWN;
    try {
      code = await this.route(route, pool);
    } finally {
      this.env.metrics.inflight.dec({ pool: route.name });
      clearTimeout(this.deadline);
      this.env.metrics.requests.inc({ pool: route.name, code: String(code) });
      this.env.metrics.duration.observe({ pool: route.name }, (this.env.clock.now() - this.startMs) / 1000);
    }
  }

  /** Checks that this is a gRPC call the router can route; answers it with a status when not. */
  private admitRequest(): PoolRoute | undefined {
    const h = this.headers;
    if (h[':method'] !== 'POST') {
      return void this.refuse(
        Status.UNIMPLEMENTED,
        `gRPC calls are POST, not ${h[':method']}`,
        'method',
        405,
      );
    }
    if (!isGrpcContentType(headerValue(h, 'content-type'))) {
      const ct = headerValue(h, 'content-type') ?? 'none';
      return void this.refuse(
        Status.INVALID_ARGUMENT,
        `content-type ${ct} is not application/grpc`,
        'content-type',
        415,
      );
    }
    const parts = splitMethod(this.path);
    if (!parts)
      return void this.refuse(Status.UNIMPLEMENTED, `"${this.path}" is not a gRPC method path`, 'path');
    const route = matchPool(this.env.table(), this.path);
    if (!route) {
      return void this.refuse(
        Status.UNIMPLEMENTED,
        `no pool matches the service ${parts[0]} (method ${this.path})`,
        'no-pool',
      );
    }
    const timeout = headerValue(h, 'grpc-timeout');
    const clientMs = timeout === undefined ? undefined : parseGrpcTimeout(timeout);
    if (timeout !== undefined && clientMs === undefined) {
      return void this.refuse(Status.INTERNAL, `malformed grpc-timeout "${timeout}"`, 'timeout');
    }
    const ms = Math.min(clientMs ?? Infinity, route.timeoutMs ?? Infinity);
    if (ms < Infinity) this.startDeadline(ms);
    return route;
  }

  private refuse(code: number, message: string, reason: string, httpStatus = 200): void {
    this.env.metrics.rejected.inc({ reason });
    this.env.metrics.requests.inc({ pool: this.poolName, code: String(code) });
    this.log.debug({ code, reason }, message);
    this.down.endWithStatus(code, message, httpStatus);
  }

  private startDeadline(ms: number): void {
    this.deadlineAtMs = this.startMs + ms;
    this.deadline = setTimeout(() => {
      const message = `deadline of ${Math.round(ms)}ms exceeded at the router`;
      this.attempt?.cancel(Status.DEADLINE_EXCEEDED, message);
      this.down.endWithStatus(Status.DEADLINE_EXCEEDED, message);
    }, ms);
    this.deadline.unref();
  }

  /** admission → pick → forward → retry → record; resolves with the status the client got. */
  private async route(route: PoolRoute, pool: PoolState): Promise<number> {
    const { options } = this.env;
    this.body = new RequestBody(this.stream, options.maxMessageBytes, options.retryBufferBytes, (e) =>
      this.frameError(e),
    );
    // Let the first message's prefix arrive (it usually comes with the headers) so the pick can see its size.
    await new Promise<void>((r) => setImmediate(r));
    const req: PickRequest = { method: this.path, payloadBytes: this.body.scanner.firstLength ?? 0 };
    if (this.down.isFinished) return this.down.code ?? Status.CANCELLED;

    const priority = priorityOf(headerValue(this.headers, 'x-sibyl-priority'));
    const admitted = await pool.admission.acquire({ ...req, priority, deadlineMs: this.deadlineAtMs });
    if ('shed' in admitted) {
      this.log.debug({ pool: route.name, priority }, admitted.shed);
      this.down.endWithStatus(
        Status.RESOURCE_EXHAUSTED,
        `pool ${route.name} is overloaded: ${admitted.shed}`,
      );
      return Status.RESOURCE_EXHAUSTED;
    }
    const permit = admitted;
    if (this.down.isFinished) {
      permit.release(this.outcome(this.down.code ?? Status.CANCELLED));
      return this.down.code ?? Status.CANCELLED;
    }
    pool.budget.onRequest();
    const tried = new Set<EndpointState>();
    let last: AttemptResult | undefined;
    try {
      for (let n = 1; ; n++) {
        const st = this.pick(pool, req, tried);
        if (!st) {
          if (last) break;
          const message = `no endpoint available in pool ${route.name}: ${pool.unavailableReason()}`;
          this.down.endWithStatus(Status.UNAVAILABLE, message);
          return Status.UNAVAILABLE;
        }
        tried.add(st);
        last = await this.forward(pool, st, req);
        if (!this.retryReason(last, n, route)) break;
        if (!pool.budget.tryWithdraw()) {
          this.log.debug({ pool: route.name }, 'retry budget spent');
          break;
        }
        this.env.metrics.retries.inc({ pool: route.name, reason: statusName(last.code) });
        this.log.debug(
          { pool: route.name, endpoint: st.ep.address, code: last.code, attempt: n },
          'retrying elsewhere',
        );
      }
      if (!last.delivered) last.deliver();
      return this.down.code ?? last.code;
    } finally {
      const code = this.down.code ?? last?.code ?? Status.UNKNOWN;
      permit.release(this.outcome(code));
    }
  }

  /**
   * The balancer's choice among endpoints not yet tried, connectable, and allowed by their breaker; the
   * chosen one's breaker then admits the call (taking a half-open trial slot) or it is dropped and the
   * choice made again.
   */
  private pick(
    pool: PoolState,
    req: PickRequest,
    tried: ReadonlySet<EndpointState>,
  ): EndpointState | undefined {
    const candidates: EndpointState[] = [];
    for (const st of pool.endpoints.values()) {
      if (!tried.has(st) && st.sessions.connectable && pool.gate.allows(st.ep.id)) candidates.push(st);
    }
    while (candidates.length > 0) {
      const ep =
        candidates.length === 1
          ? candidates[0]?.ep
          : pool.balancer.pick(
              candidates.map((c) => c.ep),
              req,
            );
      const i = candidates.findIndex((c) => c.ep === ep);
      const st = candidates[i < 0 ? 0 : i] as EndpointState;
      if (pool.gate.admit(st.ep.id)) return st;
      candidates.splice(i < 0 ? 0 : i, 1);
    }
    return undefined;
  }

  /** One attempt on `st`, with its in-flight accounting and the outcome told to balancer and breaker. */
  private async forward(pool: PoolState, st: EndpointState, req: PickRequest): Promise<AttemptResult> {
    const { clock, options } = this.env;
    const started = clock.now();
    const left = this.deadlineAtMs - started;
    const headers = upstreamRequestHeaders(
      this.headers,
      this.path,
      left < Infinity ? formatGrpcTimeout(left) : undefined,
    );
    const onLoadReport =
      pool.route.spec.telemetry?.orca === false
        ? undefined
        : (r: OrcaReport) => {
            st.ep.load = {
              cpu: r.cpuUtilization,
              memory: r.memUtilization,
              utilization: r.applicationUtilization,
              atMs: clock.now(),
            };
          };
    const ctx = {
      down: this.down,
      body: this.body as RequestBody,
      log: this.log,
      maxMessageBytes: options.maxMessageBytes,
      onLoadReport,
    };
    const attempt = new Attempt(ctx, st.ep.address);
    this.attempt = attempt;
    if (this.down.isFinished) attempt.cancel(this.down.code ?? Status.CANCELLED, 'call already ended');
    st.callStarted(this.id, started);
    pool.balancer.onCallStarted?.(st.ep, req);
    let result: AttemptResult | undefined;
    try {
      result = await attempt.run(st.sessions, headers);
      return result;
    } finally {
      st.callEnded(this.id);
      const outcome = {
        ...this.outcome(result?.code ?? Status.UNKNOWN),
        startedAtMs: started,
        latencyMs: clock.now() - started,
      };
      pool.balancer.onCallEnded(st.ep, req, outcome);
      pool.gate.onCallEnded(st.ep.id, outcome);
    }
  }

  /** Why this failed attempt may go to another endpoint, or undefined when it may not. */
  private retryReason(r: AttemptResult, attempts: number, route: PoolRoute): string | undefined {
    if (r.delivered || this.down.isFinished) return undefined;
    if (attempts >= route.retries.maxAttempts || !this.body?.canReplay) return undefined;
    if (r.code === Status.CANCELLED || r.code === Status.DEADLINE_EXCEEDED) return undefined;
    // Never reached an application: always safe to send elsewhere.
    if (!r.reachedServer) return 'not-sent';
    const idempotent = route.idempotentMethods.has(this.path);
    // UNAVAILABLE as an answer (Trailers-Only) means the server did not act on the call.
    if (r.code === Status.UNAVAILABLE && route.retries.retryOn.has(Status.UNAVAILABLE)) return 'unavailable';
    if (idempotent && route.retries.retryOn.has(r.code)) return 'idempotent';
    return undefined;
  }

  private outcome(code: number): CallOutcome {
    const now = this.env.clock.now();
    return { ok: !isServerFault(code), code, latencyMs: now - this.startMs, startedAtMs: this.startMs };
  }

  private frameError(e: FrameError): void {
    const code = e.kind === 'too-large' ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL;
    const message = `request: ${e.message}`;
    this.log.debug({ code }, message);
    this.attempt?.cancel(code, message);
    this.down.endWithStatus(code, message);
  }

  internalError(e: unknown): void {
    this.log.error({ err: e instanceof Error ? e.stack : String(e) }, 'router failed on a call');
    this.attempt?.cancel(Status.INTERNAL, 'router error');
    this.down.endWithStatus(Status.INTERNAL, 'router error');
  }
}
