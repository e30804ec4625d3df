import type { BackendPoolSpec } from '../api/backendpool.js';
import { Status } from '../grpc/status.js';
import { Limiter, createLimitFromSpec, type Priority, type ReleaseOutcome } from '../limit/index.js';
import type { Clock, Random } from '../util/clock.js';
import { errorMessage, isSibylError } from '../util/errors.js';
import { systemTimers, type Timers } from '../util/timers.js';
import { admitAll, type Admission, type AdmissionRequest, type Permit } from './seams.js';

/**
 * Admission for a pool: its adaptive concurrency limit (src/limit) when spec.concurrency is set, else
 * everything is admitted (a limit the user did not ask for would shed calls they did not expect).
 */
export function createAdmission(
  spec: BackendPoolSpec['concurrency'],
  deps: { clock: Clock; random: Random; timers?: Timers },
): Admission {
  if (!spec) return admitAll;
  const limiter = new Limiter(createLimitFromSpec(spec, { random: deps.random }), {
    clock: deps.clock,
    timers: deps.timers ?? systemTimers,
  });
  return new LimiterAdmission(limiter);
}

/** How a call's status feeds the limit: latency of answered calls, drops for load signals, nothing else. */
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

/** The priority a client asks for in the x-sibyl-priority header (default when absent or unknown). */
export function priorityOf(header: string | undefined): Priority {
  return header === 'critical' || header === 'sheddable' ? header : 'default';
}

export class LimiterAdmission implements Admission {
  constructor(readonly limiter: Limiter) {}

  async acquire(req: AdmissionRequest): Promise<Permit | { shed: string }> {
    try {
      const token = await this.limiter.acquire({ priority: req.priority, deadlineMs: req.deadlineMs });
      return { release: (outcome) => token.release(releaseOutcome(outcome.code), outcome.latencyMs) };
    } catch (e) {
      if (isSibylError(e, 'ERR_SHED')) return { shed: e.message };
      throw new Error(`limiter failed: ${errorMessage(e)}`, { cause: e });
    }
  }
}
