import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { orcaLoad } from '../balancer/endpoint.js';
import type { CallHandle } from '../balancer/picker.js';
import type { PickRequest } from '../balancer/types.js';
import { Status } from '../grpc/status.js';
import { formatGrpcTimeout } from '../grpc/timeout.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { Attempt } from './attempt.js';
import { Downstream } from './downstream.js';
import { upstreamRequestHeaders } from './headers.js';
import type { RouterMetrics } from './metrics.js';
import type { EndpointState, PoolState } from './pool-state.js';
import type { RequestBody } from './request-body.js';

/**
 * Probes (docs/architecture.md, "Balancing, breakers and limits"): when the pool's policy wants an
 * endpoint measured (Balancer.probeTarget, asked through Picker.probe), the router sends it a shadow
 * copy of the client's call and discards the answer, so an avoided endpoint is measured without a
 * client waiting on it. As Envoy's request mirroring, the copy is fire-and-forget: it never delays,
 * fails or cancels the client's call, and nothing of it reaches the client.
 *
 * Only a copy that is safe and whole: the method is in the pool's idempotentMethods and the request
 * body has ended and was kept (RequestBody.canHedge, as for a hedge), so a streaming or large call, or
 * one whose body is still arriving at the pick, carries no probe. The pool's probe budget
 * (picker.ts probeBudget: 5% of such calls) caps the load probes add; the endpoint's limiter gives a
 * probe a slot only if one is free, and its breaker admits it only while Closed. The copy carries
 * `x-sibyl-probe: 1`, so a backend can tell it from a client's call, and the client's deadline, or
 * PROBE_MAX_MS when the client set none. Its handle's end is the usual bookkeeping: the policy learns
 * its latency, the breaker sees a failure, the endpoint's limit its slot. Per-pool request figures
 * (sibyl_router_requests_total, request latency) do not count it; sibyl_router_probes_total does.
 */
const PROBE_HEADER = 'x-sibyl-probe';

/** A probe's deadline when the client's call has none. */
const PROBE_MAX_MS = 10_000;

export interface ProbeEnv {
  clock: Clock;
  log: Logger;
  metrics: RouterMetrics;
  options: { maxMessageBytes: number };
}

export interface ProbeCall {
  path: string;
  headers: IncomingHttpHeaders;
  req: PickRequest;
  body: RequestBody;
  /** The client's call's handle (its endpoint is never the probe's). */
  picked: CallHandle<EndpointState>;
  /** The client's deadline, absolute on env.clock (Infinity when none). */
  deadlineAtMs: number;
}

/**
 * Sends a probe alongside a client's call when the pool's policy asks for one and the call allows it;
 * returns the probe's end (for tests), or undefined when none was sent. Never throws.
 */
export function maybeProbe(env: ProbeEnv, pool: PoolState, call: ProbeCall): Promise<void> | undefined {
  if (!pool.balancer.probeTarget || !pool.route.idempotentMethods.has(call.path)) return undefined;
  pool.probeBudget.onRequest();
  if (!call.body.canHedge) return undefined;
  const noneTried = new Set<EndpointState>();
  const handle = pool.picker.probe(
    pool.candidates(noneTried),
    call.req,
    call.picked.target,
    pool.probeBudget,
  );
  if (!handle) return undefined;
  const leftMs = Math.min(call.deadlineAtMs - env.clock.now(), PROBE_MAX_MS);
  if (!(leftMs > 0)) return void handle.end(Status.CANCELLED); // never sent: its slot goes back
  try {
    return send(env, pool, call, handle, leftMs);
  } catch (e) {
    handle.end(Status.INTERNAL);
    env.log.warn({ pool: pool.route.name, err: errorMessage(e) }, 'probe not sent');
    return undefined;
  }
}

function send(
  env: ProbeEnv,
  pool: PoolState,
  call: ProbeCall,
  handle: CallHandle<EndpointState>,
  leftMs: number,
): Promise<void> {
  const address = handle.endpoint.address;
  const headers = upstreamRequestHeaders(call.headers, call.path, formatGrpcTimeout(leftMs));
  headers[PROBE_HEADER] = '1';
  const down = new Downstream(new Discard() as unknown as ServerHttp2Stream, env.log);
  const ctx = {
    down,
    body: call.body.replay(),
    log: env.log,
    maxMessageBytes: env.options.maxMessageBytes,
    readLoad: pool.route.settings.telemetry.orca,
  };
  const attempt = new Attempt(ctx, address);
  env.metrics.probes.inc({ pool: pool.route.name });
  handle.start();
  const timer = setTimeout(
    () => attempt.cancel(Status.DEADLINE_EXCEEDED, `probe deadline of ${Math.round(leftMs)}ms exceeded`),
    leftMs,
  );
  timer.unref();
  return attempt.run(handle.target.sessions, headers).then(
    (r) => {
      clearTimeout(timer);
      handle.end(r.code, r.load && orcaLoad(r.load, env.clock.now()));
      env.log.debug({ pool: pool.route.name, endpoint: address, code: r.code }, 'probe answered');
    },
    (e: unknown) => {
      clearTimeout(timer);
      handle.end(Status.INTERNAL);
      env.log.warn({ pool: pool.route.name, endpoint: address, err: errorMessage(e) }, 'probe failed');
    },
  );
}

/**
 * Where a probe's response goes: nowhere. It plays the client's stream as far as Downstream and
 * Attempt use one (respond, write, end, sendTrailers, close), and keeps nothing.
 */
class Discard extends Writable {
  respond(): void {}
  sendTrailers(): void {}
  close(): void {
    this.destroy();
  }
  override _write(_chunk: unknown, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    cb();
  }
}
