import type { XdsPoolInput } from './types.js';
import { resourceName } from './types.js';
import { quantise } from './weights.js';

/** A resource or a part of one as a plain object with the proto's snake_case field names. */
export type Msg = Record<string, unknown>;

/** google.protobuf.Duration from milliseconds. */
export function duration(ms: number): { seconds: number; nanos: number } {
  const whole = Math.max(0, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

/**
 * gRPC status names a retry may be triggered by, as Envoy's and gRPC's `retry_on` spell them (gRFC
 * A44 and Envoy's x-envoy-retry-grpc-on). The spec's "unknown" and "aborted" have no such name, so
 * data planes do not retry on them; the sibyl router does.
 */
const GRPC_RETRY_ON = new Set([
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/** Backoff between attempts: gRPC's default base (25 ms), capped at ten times that. */
const RETRY_BACKOFF = { base_interval: duration(25), max_interval: duration(250) };

/** The pool's match as routes, exact methods before services: the order the router matches in. */
export function matchRoutes(pool: XdsPoolInput): { exact: Msg[]; prefix: Msg[] } {
  return {
    exact: pool.match.methods.map((m) => ({ path: m })),
    prefix: pool.match.services.map((s) => ({ prefix: `/${s}/` })),
  };
}

function retryOn(pool: XdsPoolInput): string {
  return pool.spec.retries.retryOn.filter((c) => GRPC_RETRY_ON.has(c)).join(',');
}

/**
 * A proxyless client's route action. gRPC honours cluster, retry_policy (gRFC A44) and
 * max_stream_duration (gRFC A31); it ignores `timeout` and has no hedging from xDS. The spec's timeout
 * becomes max_stream_duration, which caps every call (the router applies it only to calls without a
 * deadline of their own).
 */
export function proxylessAction(pool: XdsPoolInput): Msg {
  const { retries, timeoutMs } = pool.spec;
  const on = retryOn(pool);
  return {
    cluster: resourceName(pool.key),
    ...(timeoutMs !== undefined ? { max_stream_duration: { max_stream_duration: duration(timeoutMs) } } : {}),
    ...(retries.maxAttempts > 1 && on
      ? {
          retry_policy: {
            retry_on: on,
            num_retries: { value: retries.maxAttempts - 1 },
            retry_back_off: RETRY_BACKOFF,
          },
        }
      : {}),
  };
}

/**
 * The hedge delay for Envoy's per-try timeout: the fixed delay, or for "Predicted" the slowest
 * predicted service time among ready endpoints (a call later than every endpoint's expectation is
 * late), quantised so prediction noise does not rewrite routes; undefined when nothing is predicted.
 */
function hedgeDelayMs(pool: XdsPoolInput): number | undefined {
  const { delay } = pool.spec.hedging;
  if (delay !== 'Predicted') return delay;
  const predicted = pool.endpoints
    .filter((e) => e.ready && !e.draining && e.predictedServiceMs !== undefined)
    .map((e) => e.predictedServiceMs as number);
  return predicted.length ? quantise(Math.max(1, ...predicted)) : undefined;
}

/**
 * What a per-try deadline adds to an idempotent method's retry_on: Envoy retries a try its
 * per_try_timeout cut only under `5xx` or `gateway-error` (its RetryStateImpl: a per-try timeout is a
 * stream reset answered like a 504), and `reset` covers an endpoint that drops the stream. Only
 * idempotent methods get them: a try that timed out may have been carried out.
 */
const DEADLINE_RETRY_ON = ['gateway-error', 'reset'];

/**
 * How many times Envoy picks again when the previous_hosts predicate rejects a retry's host (after
 * that it sends the retry to the last host picked, even a rejected one). Each pick goes to a tried
 * host with about its weight share, so with one of three endpoints stalled and 3 re-picks about 1 in
 * 80 retries went back to it, and a try cut at its deadline was cut again (2 of 30 calls failed in
 * CI, test/integration/operator/deadlines.test.ts); at 10 it is about 1 in 180,000. A re-pick is one
 * load-balancer choice, and going back to the host a try just left is the dearest retry there is
 * (Istio sets 5).
 */
const HOST_RESELECTIONS = 10;

/** A method's per-try deadline (ms) and whether the pool lists it as idempotent. */
export interface MethodPerTry {
  readonly timeoutMs: number;
  readonly idempotent: boolean;
}

/**
 * Envoy's route action: the spec's timeout only for calls without grpc-timeout
 * (grpc_timeout_header_max 0 lets the caller's deadline through unbounded, and a route timeout of 0
 * disables Envoy's 15 s default, which would cut long streams); retries on gRPC statuses, each on
 * another host, within the cluster's retry budget; hedging on the per-try timeout for idempotent
 * methods.
 *
 * `perTry.timeoutMs`, the method's predicted deadline (src/operator/deadlines.ts), becomes the route's
 * per_try_timeout: a try past it is cancelled (Envoy caps it at the call's own deadline, which grpc-timeout
 * sets). An idempotent method's try is then retried on another endpoint, at least once, within the
 * cluster's retry budget (DEADLINE_RETRY_ON); any other method's is not. A hedged route keeps its hedge
 * delay as per_try_timeout: Envoy has one per-try timer per route, and with hedge_on_per_try_timeout
 * it launches a hedge instead of cancelling the try.
 */
export function envoyAction(pool: XdsPoolInput, hedged: boolean, perTry?: MethodPerTry): Msg {
  const { retries, timeoutMs } = pool.spec;
  const hedge = hedged ? hedgeDelayMs(pool) : undefined;
  const deadline = hedge === undefined ? perTry?.timeoutMs : undefined;
  const retryCut = deadline !== undefined && perTry?.idempotent === true;
  const on = [retryOn(pool), ...(retryCut ? DEADLINE_RETRY_ON : [])].filter((x) => x).join(',');
  const attempts = hedge !== undefined || retryCut ? Math.max(2, retries.maxAttempts) : retries.maxAttempts;
  const tryTimeout = hedge ?? deadline;
  return {
    cluster: resourceName(pool.key),
    timeout: duration(timeoutMs ?? 0),
    max_stream_duration: { grpc_timeout_header_max: duration(0) },
    ...((attempts > 1 && (on || hedge !== undefined)) || deadline !== undefined
      ? {
          retry_policy: {
            retry_on: on,
            num_retries: { value: on || hedge !== undefined ? attempts - 1 : 0 },
            retry_back_off: RETRY_BACKOFF,
            retry_host_predicate: [
              {
                name: 'envoy.retry_host_predicates.previous_hosts',
                typed_config: { type_url: PREVIOUS_HOSTS, value: Buffer.alloc(0) },
              },
            ],
            host_selection_retry_max_attempts: HOST_RESELECTIONS,
            ...(tryTimeout !== undefined ? { per_try_timeout: duration(tryTimeout) } : {}),
          },
        }
      : {}),
    ...(hedge !== undefined ? { hedge_policy: { hedge_on_per_try_timeout: true } } : {}),
  };
}

/** PreviousHostsPredicate has no fields, so its Any is the type URL and no bytes. */
const PREVIOUS_HOSTS =
  'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';
