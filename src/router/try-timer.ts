import { Status } from '../grpc/status.js';
import type { Timers } from '../util/timers.js';
import type { Launched } from './hedge.js';

/**
 * Runs a try under its own deadline (try-deadline.ts): once `ms` have passed on `timers`, the attempt
 * is cancelled (RST_STREAM CANCEL upstream, so the backend stops working on it) with DEADLINE_EXCEEDED
 * and `message`, and its result comes back marked `expired`: the pipeline then sends the call to
 * another endpoint where it may (pipeline.ts, retryable) or gives the client that status. The timer is
 * cleared when the try settles first.
 */
export function underDeadline(launched: Launched, ms: number, message: string, timers: Timers): Launched {
  let expired = false;
  const timer = timers.setTimeout(() => {
    expired = true;
    // censored: the try was slow, not failed; its latency (the deadline) is a lower bound for the
    // policy (CallOutcome.censored), and the breaker still sees DEADLINE_EXCEEDED
    launched.attempt.cancel(Status.DEADLINE_EXCEEDED, message, true);
  }, ms);
  const done = launched.done.then(
    (r) => {
      timers.clearTimeout(timer);
      return expired ? { ...r, expired: true } : r;
    },
    (e: unknown) => {
      timers.clearTimeout(timer);
      throw e;
    },
  );
  return { attempt: launched.attempt, done };
}
