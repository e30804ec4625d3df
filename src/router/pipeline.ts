import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { orcaLoad } from '../balancer/endpoint.js';
import type { CallHandle } from '../balancer/picker.js';
import type { CallOutcome, PickRequest } from '../balancer/types.js';
import { MAX_ENTRY_BODY_BYTES, type PoolCache } from '../cache/pool-cache.js';
import type { Answer } from '../cache/tiered.js';
import { CACHE_MODE_HEADER, cacheModeOf, type CacheMode } from '../cache/types.js';
import type { WarmRequest } from '../cache/warmer.js';
import type { FrameError } from '../grpc/framing.js';
import { Status, isServerFault, statusName } from '../grpc/status.js';
import { formatGrpcTimeout } from '../grpc/timeout.js';
import type { Priority } from '../limit/index.js';
import type { Clock } from '../util/clock.js';
import type { Timers } from '../util/timers.js';
import { priorityOf } from './admission.js';
import { Attempt, type AttemptResult, type BodySource } from './attempt.js';
import { CapturingDownstream, serveAnswer } from './capture.js';
import { raceWithHedge, type Launched } from './hedge.js';
import { headerValue, upstreamRequestHeaders } from './headers.js';
import { InternalStream } from './internal-stream.js';
import type { RouterMetrics } from './metrics.js';
import type { CallPredictions, EndpointState, PoolState } from './pool-state.js';
import { maybeProbe } from './probe.js';
import { RequestBody } from './request-body.js';
import { checkRequest } from './request-check.js';
import type { PoolRoute, RoutingTable } from './table.js';
import { describeTryDeadline } from './try-deadline.js';
import { underDeadline } from './try-timer.js';

/**
 * The per-call pipeline (docs/architecture.md, "Router"): check the request → match a pool → admission
 * (the pool's concurrency limit) → cache → pick (the pool's Picker: balancer, then the endpoint's own
 * concurrency limit and its breaker) → forward (or hedge) → retry on another endpoint where allowed.
 * Each attempt's bookkeeping (in-flight counts, balancer, breaker, endpoint limit, observers, load
 * reports) is its call handle's (src/balancer/picker.ts), ended once when the attempt settles. The
 * cache step is the pool cache's getOrLoad around the backend steps: a hit, or the answer of the call
 * already fetching the same key, is served from memory; otherwise this call goes to a backend and its
 * response is recorded (CapturingDownstream) to be shared and filled. Each try may have a deadline of
 * its own (spec.timeout.predicted; try-deadline.ts, try-timer.ts): a try past it is cancelled and the
 * call retried elsewhere where that is safe (retryable).
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
  /** Hedge delays and per-try deadlines run on these. */
  timers: Timers;
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
  private readonly path: string;
  private readonly log: Logger;
  private body: RequestBody | undefined;
  /** Attempts in flight (two while a hedge races the first). */
  private readonly attempts = new Set<Attempt>();
  private deadline: NodeJS.Timeout | undefined;
  private deadlineAtMs = Infinity;
  private poolName = 'none';
  /** Whether this call's outcome may feed the pool's limit (not when the router answered it itself). */
  private limitSample = true;

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
      // censored: the attempts' latencies so far are lower bounds (CallOutcome.censored)
      if (this.down.code === undefined)
        this.cancelAttempts(Status.CANCELLED, 'client cancelled the call', true);
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

  /** admission → cache → pick → forward → retry; resolves with the status the client got. */
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
    if ('shed' in admitted) return this.shed(route.name, admitted.shed);
    let code: number = Status.UNKNOWN;
    try {
      if (this.down.isFinished) return (code = this.down.code ?? Status.CANCELLED);
      const ttlMs = pool.cache?.ttlFor(this.path);
      const mode = cacheModeOf(headerValue(this.headers, CACHE_MODE_HEADER));
      const backend = () => this.toBackend(pool, route, req, priority);
      code = await (pool.cache && ttlMs !== undefined && mode !== 'bypass'
        ? this.cached(pool.cache, mode, ttlMs, backend)
        : backend());
      return code;
    } finally {
      admitted.release(this.outcome(code), this.limitSample);
    }
  }

  /** Answers a call shed by a concurrency limit: RESOURCE_EXHAUSTED, with how long that took recorded. */
  private shed(pool: string, why: string): number {
    this.log.debug({ pool }, why);
    this.down.endWithStatus(Status.RESOURCE_EXHAUSTED, `pool ${pool} is overloaded: ${why}`);
    this.env.metrics.shed.observe({ pool }, (this.env.clock.now() - this.startMs) / 1000);
    return Status.RESOURCE_EXHAUSTED;
  }

  /**
   * The cache step for a method the pool's cache lists (idempotent unary methods only: the whole request
   * is read before anything is sent): the pool cache's getOrLoad, with `backend` as its load. A call
   * answered here (a hit, another call's answer, or none because the client left) says nothing of the
   * pool's load: no limit sample. A request too large to keep goes to a backend uncached.
   */
  private async cached(
    cache: PoolCache,
    mode: CacheMode,
    ttlMs: number,
    backend: () => Promise<number>,
  ): Promise<number> {
    const request = await this.wholeRequest();
    const answeredHere = (code: number) => ((this.limitSample = false), code);
    if (this.down.isFinished) return answeredHere(this.down.code ?? Status.CANCELLED);
    if (!request) return backend();
    let code: number | undefined;
    let failure: unknown;
    const load = async (): Promise<Answer | undefined> => {
      this.down.startCapture(MAX_ENTRY_BODY_BYTES);
      // A router error is this call's alone: the callers waiting on it call a backend themselves.
      try {
        code = await backend();
      } catch (e) {
        failure = e;
      }
      return this.down.captured();
    };
    const r = await cache.getOrLoad(this.path, request, this.headers, mode, ttlMs, load, this.clientGone());
    if (failure !== undefined) throw failure;
    if (r.from === 'load') return code ?? this.down.code ?? Status.UNKNOWN;
    if (r.from === 'gone' || this.down.isFinished) return answeredHere(this.down.code ?? Status.CANCELLED);
    serveAnswer(this.down, r.answer);
    return answeredHere(r.answer.code);
  }

  /** Settles when the client's stream closes (or has closed). */
  private clientGone(): Promise<void> {
    return new Promise<void>((r) => {
      if (this.down.gone) r();
      else this.stream.once('close', () => r());
    });
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

  /** pick → forward (or hedge) → retry on another endpoint where allowed; the status the client got. */
  private async toBackend(pool: PoolState, route: PoolRoute, req: PickRequest, priority: Priority) {
    pool.budget.onRequest();
    const tried = new Set<EndpointState>();
    let last: AttemptResult | undefined;
    for (let n = 1; ; n++) {
      const picked = await pool.picker.pick(pool.candidates(tried), req, priority, this.deadlineAtMs);
      if (picked.type !== 'complete') {
        if (last) break;
        if (picked.type === 'drop') {
          // Shed by the endpoints' limits, not by anything the pool's endpoints answered.
          this.limitSample = false;
          return this.shed(route.name, picked.reason);
        }
        const message = `no endpoint available in pool ${route.name}: ${pool.unavailableReason()}`;
        this.down.endWithStatus(Status.UNAVAILABLE, message);
        return Status.UNAVAILABLE;
      }
      tried.add(picked.call.target);
      const attempt = this.forwardOrHedge(pool, picked.call, req, priority, tried); // started now
      if (n === 1) this.probe(pool, req, picked.call);
      last = await attempt;
      if (!this.retryReason(last, n, route)) {
        this.countTryTimeout(last, route, false);
        break;
      }
      if (!pool.budget.tryWithdraw()) {
        this.log.debug({ pool: route.name }, 'retry budget spent');
        this.countTryTimeout(last, route, false);
        break;
      }
      this.countTryTimeout(last, route, true);
      this.env.metrics.retries.inc({ pool: route.name, reason: statusName(last.code) });
      this.log.debug(
        { pool: route.name, endpoint: picked.call.endpoint.address, code: last.code, attempt: n },
        'retrying elsewhere',
      );
    }
    if (!last.delivered) last.deliver();
    return this.down.code ?? last.code;
  }

  /**
   * Sends the call to `first`; for a hedged pool and an idempotent method whose request is complete, a
   * second attempt goes to another endpoint if `first` has not answered within the hedge delay (and the
   * hedge budget allows). The first answer wins and the other attempt is cancelled; a failure that
   * could be retried waits for the other attempt instead (hedge.ts).
   */
  private async forwardOrHedge(
    pool: PoolState,
    first: CallHandle<EndpointState>,
    req: PickRequest,
    priority: Priority,
    tried: Set<EndpointState>,
  ): Promise<AttemptResult> {
    const body = this.body as RequestBody;
    // the model's view of the call at `first` is taken before the call is counted there
    const predicted = pool.predictions(first, true);
    const a = this.startAttempt(pool, first, body, predicted);
    const hedge = pool.hedgeDelay(this.path, first.target, predicted.hedgeMs);
    if (hedge === undefined) return a.done;
    const delay = hedge.ms;
    this.env.metrics.hedgeDelay.observe({ pool: pool.route.name, source: hedge.source }, delay / 1000);
    pool.hedgeBudget.onRequest();
    const launch = (): Launched | undefined => {
      if (this.down.isCommitted || this.down.isFinished || !body.canHedge) return undefined;
      const second = pool.picker.pickNow(pool.candidates(tried), req, priority);
      if (second.type !== 'complete') return undefined;
      if (!pool.hedgeBudget.tryWithdraw()) {
        second.call.end(Status.CANCELLED); // never sent: its slot and breaker trial go back
        return undefined;
      }
      tried.add(second.call.target);
      const secondPredicted = pool.predictions(second.call, false);
      this.env.metrics.hedges.inc({ pool: pool.route.name });
      this.log.debug(
        { pool: pool.route.name, endpoint: second.call.endpoint.address, delayMs: delay },
        'hedging',
      );
      return this.startAttempt(pool, second.call, body.replay(), secondPredicted);
    };
    const isFinal = (r: AttemptResult) => !this.retryable(r, pool.route);
    return raceWithHedge(a, delay, launch, isFinal, this.env.timers);
  }

  /**
   * One attempt on the call's endpoint: its handle starts now and ends when the attempt settles, with
   * the response's ORCA load report when the pool reads them. `body` is the live request body, or a
   * replay of it for a hedge. `predicted` (the call's quantiles at this endpoint) sets its try deadline.
   * The upstream grpc-timeout stays the call's: the router ends a try itself (RST_STREAM), whereas a
   * backend answering DEADLINE_EXCEEDED on its own would look like a final answer.
   */
  private startAttempt(
    pool: PoolState,
    call: CallHandle<EndpointState>,
    body: BodySource,
    predicted: CallPredictions,
  ): Launched {
    const { clock, options } = this.env;
    const left = this.deadlineAtMs - clock.now();
    const headers = upstreamRequestHeaders(
      this.headers,
      this.path,
      left < Infinity ? formatGrpcTimeout(left) : undefined,
    );
    const ctx = {
      down: this.down,
      body,
      log: this.log,
      maxMessageBytes: options.maxMessageBytes,
      readLoad: pool.route.settings.telemetry.orca,
    };
    const attempt = new Attempt(ctx, call.endpoint.address);
    this.attempts.add(attempt);
    if (this.down.isFinished) attempt.cancel(this.down.code ?? Status.CANCELLED, 'call already ended');
    call.start();
    const done = attempt.run(call.target.sessions, headers).then(
      (result) => {
        this.attempts.delete(attempt);
        call.end(result.code, result.load && orcaLoad(result.load, clock.now()), result.censored);
        return result;
      },
      (e: unknown) => {
        this.attempts.delete(attempt);
        call.end(Status.INTERNAL);
        throw e;
      },
    );
    return this.withTryDeadline(pool, { attempt, done }, predicted.p99Ms, left);
  }

  /** The try under its own deadline, when the pool sets one and a p99 is known (try-deadline.ts). */
  private withTryDeadline(
    pool: PoolState,
    launched: Launched,
    predictedP99Ms: number | undefined,
    left: number,
  ): Launched {
    const d = pool.tryDeadline(this.path, predictedP99Ms, left);
    const spec = pool.route.settings.predictedTimeout;
    if (!d || !spec) return launched;
    const ms = Math.round(d.ms);
    const message = `no answer from ${launched.attempt.endpoint} within the try's deadline of ${ms}ms (${describeTryDeadline(d, spec)})`;
    const guarded = underDeadline(launched, d.ms, message, this.env.timers);
    const done = guarded.done.then((r) => {
      // Response bytes already reached the client: no retry; the call ends here with the try's status.
      if (r.expired && r.delivered && !r.lostRace) this.down.endWithStatus(Status.DEADLINE_EXCEEDED, message);
      return r;
    });
    return { attempt: guarded.attempt, done };
  }

  /** sibyl_router_try_timeouts_total for a call whose last try passed its own deadline. */
  private countTryTimeout(r: AttemptResult, route: PoolRoute, retried: boolean): void {
    if (!r.expired) return;
    this.env.metrics.tryTimeouts.inc({ pool: route.name, outcome: retried ? 'retried' : 'failed' });
    this.log.debug({ pool: route.name, retried }, r.message);
  }

  /** A probe alongside the call's first attempt, when the policy wants one and the call allows (probe.ts). */
  private probe(pool: PoolState, req: PickRequest, picked: CallHandle<EndpointState>): void {
    const { path, headers, deadlineAtMs } = this;
    void maybeProbe(this.env, pool, {
      path,
      headers,
      req,
      body: this.body as RequestBody,
      picked,
      deadlineAtMs,
    });
  }

  /** Why this failed attempt may go to another endpoint, or undefined when it may not. */
  private retryReason(r: AttemptResult, attempts: number, route: PoolRoute): string | undefined {
    if (attempts >= route.settings.retries.maxAttempts || !this.body?.canReplay) return undefined;
    return this.retryable(r, route);
  }

  /** Whether a result could be sent again elsewhere by its kind alone (not counting attempts or budget). */
  private retryable(r: AttemptResult, route: PoolRoute): string | undefined {
    if (r.delivered || this.down.isFinished) return undefined;
    // Past its own deadline: elsewhere if the backend never saw it, or may act on it twice.
    if (r.expired) {
      if (!r.reachedServer) return 'not-sent';
      return route.idempotentMethods.has(this.path) ? 'try-deadline' : undefined;
    }
    if (r.code === Status.CANCELLED || r.code === Status.DEADLINE_EXCEEDED) return undefined;
    // Never reached an application: always safe to send elsewhere.
    if (!r.reachedServer) return 'not-sent';
    const idempotent = route.idempotentMethods.has(this.path);
    // UNAVAILABLE as an answer (Trailers-Only) means the server did not act on the call.
    if (r.code === Status.UNAVAILABLE && route.retryOn.has(Status.UNAVAILABLE)) return 'unavailable';
    if (idempotent && route.retryOn.has(r.code)) return 'idempotent';
    return undefined;
  }

  private cancelAttempts(code: number, message: string, censored = false): void {
    for (const a of this.attempts) a.cancel(code, message, censored);
  }

  /** The call's outcome as a whole (from its start at the router), for the pool's admission limit. */
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
