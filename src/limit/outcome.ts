import { Status } from '../grpc/status.js';
import type { ReleaseOutcome } from './limiter.js';

/**
 * How a call's gRPC status feeds a limit: the latency of answered calls, a drop for the load signals
 * (the deadline passed, or the server shed it), nothing for failures that say nothing of load (the
 * client cancelled, the connection failed, the server broke).
 */
export function releaseOutcome(code: number): ReleaseOutcome {
  if (code === Status.DEADLINE_EXCEEDED || code === Status.RESOURCE_EXHAUSTED) return 'dropped';
  if (
    code === Status.CANCELLED ||
    code === Status.UNAVAILABLE ||
    code === Status.INTERNAL ||
    code === Status.UNKNOWN
  ) {
    return 'ignore';
  }
  return 'success';
}
