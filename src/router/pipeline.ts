import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import type { CallOutcome, Endpoint, PickRequest } from '../balancer/types.js';
import type { Clock } from '../util/clock.js';
import { Status, isServerFault, statusName } from '../grpc/status.js';
import { formatGrpcTimeout } from '../grpc/timeout.js';
import type { FrameError } from '../grpc/framing.js';
import type { OrcaReport } from '../grpc/orca.js';
import { Attempt, type AttemptResult, type BodySource } from './attempt.js';
import { raceWithHedge } from './hedge.js';
import { headerValue, upstreamRequestHeaders } from './headers.js';
import type { RouterMetrics } from './metrics.js';
import type { EndpointState, PoolState } from './pool-state.js';
import { RequestBody } from './request-body.js';
import { priorityOf } from './admission.js';
import { releaseOutcome } from '../limit/index.js';
import { chooseNow, waitForSlot, type ChooseContext, type Chosen } from './choose.js';
import type { Token } from '../limit/index.js';
import { checkRequest } from './request-check.js';
import type { PoolRoute, RoutingTable } from './table.js';
import type { Writable } from 'node:stream';
import { CapturingDownstream, serveAnswer } from './capture.js';
import { MAX_ENTRY_BODY_BYTES, type PoolCache } from '../cache/pool-cache.js';
import type { Flight } from '../cache/tiered.js';
import { CACHE_MODE_HEADER, cacheModeOf } from '../cache/types.js';
import { InternalStream } from './internal-stream.js';
import type { Answer } from '../cache/tiered.js';
import type { WarmRequest } from '../cache/warmer.js';

/**
 * The per-call pipeline (DESIGN.md §4): check the request → match a pool → admission (the pool's
 * concurrency limit) → pick (balancer, then the endpoint's own concurrency limit and its breaker:
 * choose.ts) → forward (or hedge) → retry on another endpoint where allowed → record the outcome. Each
 * step is a method here; the parts other modules own come in through each pool's seams (seams.ts):
 * `admission` (src/limit) and `gate` (src/breaker). The cache (src/cache) sits between admission and
 * pick: cacheStep answers from a tier or from the call already fetching the same key, or lets the call
 * go on as the key's leader, whose response is recorded (CapturingDownstream) and filled at the end.
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
  /** Sees every attempt start and end (the control stream's load reports and training samples). */
  observer?: AttemptObserver;
}

/**
 * A seam for whoever reports load: `started` returns what it wants back at the end (e.g. the
 * features at dispatch for a training sample), `ended` gets the status and latency.
 */
export interface AttemptObserver {
  started(pool: PoolState, ep: Endpoint, req: PickRequest, nowMs: number): unknown;
  ended(pool: PoolState, ep: Endpoint, context: unknown, code: number, latencyMs: number, ok: boolean): void;
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

/**
 * A call the router makes to itself (the cache warmer's refresh, src/cache/warmer.ts): the whole
 * pipeline on an in-process stream, marked bypass (the warmer stores the answer itself) and sheddable
 * (admission gives it only the limiter's headroom), with a 10 s deadline.
 */
export function internalCall(env: PipelineEnv, req: WarmRequest): Promise<Answer | undefined> {
  const stream = new InternalStream(req.body);
  const headers: IncomingHttpHeaders = {
    ...req.headers,
    ':method': 'POST',
    ':path': req.method,
    ':scheme': 'http',
    te: 'trailers',
    'content-type': headerValue(req.headers, 'content-type') ?? 'application/grpc',
    [CACHE_MODE_HEADER]: 'bypass',
    'x-sibyl-priority': 'sheddable',
    'grpc-timeout': '10S',
  };
  handleStream(env, stream as unknown as ServerHttp2Stream, headers);
  return stream.answer;
}

class CallPipeline {
  private readonly id = nextCallId++;
  private readonly startMs: number;
  private readonly down: CapturingDownstream;
  /** This call fetches a cached method's answer for every caller of its key (the cache step). */
  private flight: Flight | undefined;
  private readonly path: string;
  private readonly log: Logger;
  private body: RequestBody | undefined;
  /** Attempts in flight (two while a hedge races the first). */
  private readonly attempts = new Set<Attempt>();
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
    // A child logger costs a bindings serialisation per call: only when its debug lines will be written.
    this.log = env.log.isLevelEnabled('debug')
      ? env.log.child({ call: this.id, method: this.path })
      : env.log;
    this.down = new CapturingDownstream(stream, this.log);
    stream.on('error', (e) => this.log.debug({ err: e.message }, 'client stream error'));
    stream.once('close', () => {
      // Closed before any status was given: the client reset the stream or its connection went away.
      if (this.down.code === undefined) this.cancelAttempts(Status.CANCELLED, 'client cancelled the call');
      clearTimeout(this.deadline);
    });
  }

  async run(): Promise<void> {
    const route = this.admitRequest();
    if (!route) return;
    const pool = this.env.pool(route.name);
    if (!pool) return this.refuse(Status.UNAVAILABLE, `pool ${route.name} is not ready`, 'no-pool');
    this.poolName = route.name;
    const series = this.env.metrics.forPool(route.name);
    series.inflight.inc();
    let code: number = Status.UNKNOWN;
    try {
      code = await this.route(route, pool);
    } finally {
      series.inflight.dec();
      clearTimeout(this.deadline);
      series.requests(code).inc();
      series.duration.observe((this.env.clock.now() - this.startMs) / 1000);
    }
  }

  /** Checks that this is a gRPC call the router can route; answers it with a status when not. */
  private admitRequest(): PoolRoute | undefined {
    const checked = checkRequest(this.headers, this.env.table());
    if ('reason' in checked) {
      return void this.refuse(checked.code, checked.message, checked.reason, checked.httpStatus);
    }
    if (checked.timeoutMs < Infinity) this.startDeadline(checked.timeoutMs);
    return checked.route;
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
      this.cancelAttempts(Status.DEADLINE_EXCEEDED, message);
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
    // Let the first message's prefix arrive so the pick can see its size. It usually came in the same
    // read as the headers, and flows once the stream resumes (a nextTick); else wait for this I/O turn.
    await new Promise<void>((r) => process.nextTick(r));
    if (this.body.scanner.firstLength === undefined && !this.body.ended) {
      await new Promise<void>((r) => setImmediate(r));
    }
    const req: PickRequest = { method: this.path, payloadBytes: this.body.scanner.firstLength ?? 0 };
    if (this.down.isFinished) return this.down.code ?? Status.CANCELLED;

    const priority = priorityOf(headerValue(this.headers, 'x-sibyl-priority'));
    const admitted = await pool.admission.acquire({ ...req, priority, deadlineMs: this.deadlineAtMs });
    if ('shed' in admitted) return this.shed(route.name, priority, admitted.shed);
    const permit = admitted;
    if (this.down.isFinished) {
      permit.release(this.outcome(this.down.code ?? Status.CANCELLED));
      return this.down.code ?? Status.CANCELLED;
    }
    if (pool.cache) {
      const answered = await this.cacheStep(pool.cache);
      if (answered !== undefined) {
        // Answered without a backend: says nothing about the pool's load, so no limiter sample.
        permit.release(this.outcome(answered), false);
        return answered;
      }
    }
    pool.budget.onRequest();
    const tried = new Set<EndpointState>();
    const ctx: ChooseContext<EndpointState> = {
      pick: (eps) => pool.balancer.pick(eps, req),
      admit: (st) => pool.gate.admit(st.ep.id),
      priority,
      deadlineMs: this.deadlineAtMs,
    };
    let last: AttemptResult | undefined;
    let sample = true;
    try {
      for (let n = 1; ; n++) {
        const chosen = await this.pick(pool, ctx, tried, true);
        if (!chosen || 'shed' in chosen) {
          if (last) break;
          if (chosen) {
            // Shed by the endpoints' limits, not by anything the pool's endpoints answered.
            sample = false;
            return this.shed(route.name, priority, chosen.shed);
          }
          const message = `no endpoint available in pool ${route.name}: ${pool.unavailableReason()}`;
          this.down.endWithStatus(Status.UNAVAILABLE, message);
          return Status.UNAVAILABLE;
        }
        const st = chosen.st;
        tried.add(st);
        last = await this.forwardOrHedge(pool, chosen, req, ctx, tried);
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
      // Waiting callers get this answer (errors included); an OK one is stored.
      this.flight?.complete(this.down.captured());
      permit.release(this.outcome(code), sample);
    }
  }

  /** Answers a call shed by a concurrency limit: RESOURCE_EXHAUSTED, with how long that took recorded. */
  private shed(pool: string, priority: string, why: string): number {
    this.log.debug({ pool, priority }, why);
    this.down.endWithStatus(Status.RESOURCE_EXHAUSTED, `pool ${pool} is overloaded: ${why}`);
    this.env.metrics.shed.observe({ pool }, (this.env.clock.now() - this.startMs) / 1000);
    return Status.RESOURCE_EXHAUSTED;
  }

  /**
   * The cache step for a method the pool's cache lists (idempotent unary methods only: the whole
   * request is read before anything is sent). Resolves with the status the client was given when the
   * call was answered here (a hit, or the answer of the call already fetching this key), else undefined
   * and the call goes to a backend: as the key's leader (its response recorded, shared and filled), or
   * uncached (`x-sibyl-cache: bypass`, a request too large to keep, a leader that left no answer).
   */
  private async cacheStep(cache: PoolCache): Promise<number | undefined> {
    const ttlMs = cache.ttlFor(this.path);
    if (ttlMs === undefined) return undefined;
    const mode = cacheModeOf(headerValue(this.headers, CACHE_MODE_HEADER));
    if (mode === 'bypass') return undefined;
    const request = await this.wholeRequest();
    if (this.down.isFinished) return this.down.code ?? Status.CANCELLED;
    if (!request) return undefined;
    const step = await cache.begin(this.path, request, this.headers, mode, ttlMs);
    switch (step.kind) {
      case 'hit':
        serveAnswer(this.down, { code: Status.OK, response: step.response });
        return Status.OK;
      case 'wait': {
        const closed = new Promise<undefined>((r) => {
          if (this.down.gone) r(undefined);
          else this.stream.once('close', () => r(undefined));
        });
        const o = await Promise.race([step.outcome, closed]);
        if (this.down.isFinished) return this.down.code ?? Status.CANCELLED;
        if (!o || !('answer' in o)) return undefined;
        serveAnswer(this.down, o.answer);
        return o.answer.code;
      }
      case 'lead':
        this.flight = step.flight;
        this.down.startCapture(MAX_ENTRY_BODY_BYTES);
        return undefined;
      case 'bypass':
        return undefined;
    }
  }

  /**
   * The whole request body once the client has sent it, or undefined when it cannot be kept (larger
   * than the retry buffer, a framing error, the client gone). It stays in the RequestBody too, which
   * sends it to the first attempt as usual.
   */
  private wholeRequest(): Promise<Buffer | undefined> {
    const body = this.body as RequestBody;
    const stream = this.stream;
    const collect = () => {
      const chunks: Buffer[] = [];
      // A sink that only collects: the replay of a complete body writes every chunk, then ends.
      const sink = { write: (c: Buffer) => chunks.push(c) > 0, end: () => undefined };
      body.replay().attach(sink as unknown as Writable);
      return Buffer.concat(chunks);
    };
    const settled = () => {
      if (body.ended) return body.canReplay ? collect() : null;
      // Not kept whole, or held back (the body reached the buffer's size): cannot be a cache key.
      if (!body.canReplay || stream.isPaused() || this.down.isFinished || stream.destroyed) return null;
      return undefined;
    };
    const now = settled();
    if (now !== undefined) return Promise.resolve(now ?? undefined);
    return new Promise((resolve) => {
      const check = (final: boolean) => {
        const r = settled();
        if (r === undefined && !final) return;
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('close', onEnd);
        resolve(r ?? undefined);
      };
      // Registered after RequestBody's own listeners, so they see each chunk and the end first.
      const onData = () => check(false);
      const onEnd = () => check(true);
      stream.on('data', onData);
      stream.once('end', onEnd);
      stream.once('close', onEnd);
    });
  }

  /**
   * The endpoint for the next attempt (choose.ts): the balancer's choice among endpoints not yet tried,
   * connectable and allowed by their breaker, that has a slot under its concurrency limit and whose
   * breaker then admits the call. With `wait`, a call finding every candidate at its limit waits briefly
   * for a slot, or is shed; without (a hedge), it is not sent.
   */
  private pick(
    pool: PoolState,
    ctx: ChooseContext<EndpointState>,
    tried: ReadonlySet<EndpointState>,
    wait: boolean,
  ): Chosen<EndpointState> | Promise<Chosen<EndpointState> | { shed: string } | undefined> | undefined {
    const candidates: EndpointState[] = [];
    for (const st of pool.endpoints.values()) {
      if (!tried.has(st) && st.sessions.connectable && pool.gate.allows(st.ep.id)) candidates.push(st);
    }
    if (!wait) return chooseNow(candidates, ctx);
    const full: EndpointState[] = [];
    return chooseNow(candidates, ctx, full) ?? (full.length > 0 ? waitForSlot(full, ctx) : undefined);
  }

  /**
   * Sends the call to `first`; for a hedged pool and an idempotent method whose request is complete, a
   * second attempt goes to another endpoint if `first` has not answered within the hedge delay (and the
   * hedge budget allows). The first answer wins and the other attempt is cancelled; a failure that
   * could be retried waits for the other attempt instead (DESIGN.md §5, "Hedging").
   */
  private async forwardOrHedge(
    pool: PoolState,
    first: Chosen<EndpointState>,
    req: PickRequest,
    ctx: ChooseContext<EndpointState>,
    tried: Set<EndpointState>,
  ): Promise<AttemptResult> {
    const body = this.body as RequestBody;
    const a = this.startAttempt(pool, first.st, first.token, req, body);
    const delay = pool.hedgeDelayMs(this.path, first.st.ep);
    if (delay === undefined) return a.done;
    pool.hedgeBudget.onRequest();
    const launch = () => {
      if (this.down.isCommitted || this.down.isFinished || !body.canHedge) return undefined;
      const second = this.pick(pool, ctx, tried, false) as Chosen<EndpointState> | undefined;
      if (!second) return undefined;
      if (!pool.hedgeBudget.tryWithdraw()) {
        second.token?.release('ignore');
        pool.gate.onCallEnded(second.st.ep.id, { ...this.outcome(Status.CANCELLED), latencyMs: 0 });
        return undefined;
      }
      tried.add(second.st);
      this.env.metrics.hedges.inc({ pool: pool.route.name });
      this.log.debug({ pool: pool.route.name, endpoint: second.st.ep.address, delayMs: delay }, 'hedging');
      return this.startAttempt(pool, second.st, second.token, req, body.replay());
    };
    return raceWithHedge(a, delay, launch, (r) => !this.retryable(r, pool.route));
  }

  /**
   * One attempt on `st`, with its in-flight accounting and the outcome told to balancer, breaker and
   * the endpoint's limiter (`token`); `body` is the live request body, or a replay of it for a hedge.
   */
  private startAttempt(
    pool: PoolState,
    st: EndpointState,
    token: Token | undefined,
    req: PickRequest,
    body: BodySource,
  ): { attempt: Attempt; done: Promise<AttemptResult> } {
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
      body,
      log: this.log,
      maxMessageBytes: options.maxMessageBytes,
      onLoadReport,
    };
    const attempt = new Attempt(ctx, st.ep.address);
    this.attempts.add(attempt);
    if (this.down.isFinished) attempt.cancel(this.down.code ?? Status.CANCELLED, 'call already ended');
    // the observer samples what the policy saw at the pick: before this call is counted there
    const seen = this.env.observer?.started(pool, st.ep, req, started);
    st.callStarted(this.id, started);
    pool.balancer.onCallStarted?.(st.ep, req);
    const done = attempt.run(st.sessions, headers).then(
      (result) => {
        this.attemptEnded(pool, st, token, req, attempt, started, result.code, seen);
        if (result.code === Status.OK) pool.latencies.record(this.path, clock.now() - started);
        return result;
      },
      (e: unknown) => {
        this.attemptEnded(pool, st, token, req, attempt, started, Status.INTERNAL, seen);
        throw e;
      },
    );
    return { attempt, done };
  }

  private attemptEnded(
    pool: PoolState,
    st: EndpointState,
    token: Token | undefined,
    req: PickRequest,
    attempt: Attempt,
    started: number,
    code: number,
    seen?: unknown,
  ): void {
    this.attempts.delete(attempt);
    st.callEnded(this.id);
    const outcome = {
      ...this.outcome(code),
      startedAtMs: started,
      latencyMs: this.env.clock.now() - started,
    };
    pool.balancer.onCallEnded(st.ep, req, outcome);
    pool.gate.onCallEnded(st.ep.id, outcome);
    token?.release(releaseOutcome(code), outcome.latencyMs);
    this.env.observer?.ended(pool, st.ep, seen, code, outcome.latencyMs, outcome.ok);
  }

  /** Why this failed attempt may go to another endpoint, or undefined when it may not. */
  private retryReason(r: AttemptResult, attempts: number, route: PoolRoute): string | undefined {
    if (attempts >= route.retries.maxAttempts || !this.body?.canReplay) return undefined;
    return this.retryable(r, route);
  }

  /** Whether a result could be sent again elsewhere by its kind alone (not counting attempts or budget). */
  private retryable(r: AttemptResult, route: PoolRoute): string | undefined {
    if (r.delivered || this.down.isFinished) return undefined;
    if (r.code === Status.CANCELLED || r.code === Status.DEADLINE_EXCEEDED) return undefined;
    // Never reached an application: always safe to send elsewhere.
    if (!r.reachedServer) return 'not-sent';
    const idempotent = route.idempotentMethods.has(this.path);
    // UNAVAILABLE as an answer (Trailers-Only) means the server did not act on the call.
    if (r.code === Status.UNAVAILABLE && route.retries.retryOn.has(Status.UNAVAILABLE)) return 'unavailable';
    if (idempotent && route.retries.retryOn.has(r.code)) return 'idempotent';
    return undefined;
  }

  private cancelAttempts(code: number, message: string): void {
    for (const a of this.attempts) a.cancel(code, message);
  }

  private outcome(code: number): CallOutcome {
    const now = this.env.clock.now();
    return { ok: !isServerFault(code), code, latencyMs: now - this.startMs, startedAtMs: this.startMs };
  }

  private frameError(e: FrameError): void {
    const code = e.kind === 'too-large' ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL;
    const message = `request: ${e.message}`;
    this.log.debug({ code }, message);
    this.cancelAttempts(code, message);
    this.down.endWithStatus(code, message);
  }

  internalError(e: unknown): void {
    this.log.error({ err: e instanceof Error ? e.stack : String(e) }, 'router failed on a call');
    this.cancelAttempts(Status.INTERNAL, 'router error');
    this.down.endWithStatus(Status.INTERNAL, 'router error');
  }
}
