import type { ConcurrencySpec } from '../api/resolve.js';
import { Limiter, createLimitFromSpec, type Limit, type Priority, releaseOutcome } from '../limit/index.js';
import type { Clock, Random } from '../util/clock.js';
import { errorMessage, isSibylError } from '../util/errors.js';
import { systemTimers, type Timers } from '../util/timers.js';
import { admitAll, type Admission, type AdmissionRequest, type Permit } from './seams.js';

/**
 * Adaptive concurrency (docs/architecture.md, "Balancing, breakers and limits") in the router, per pool and per endpoint, both from the pool's
 * spec.concurrency (absent: no limit at all; a limit the user did not ask for would shed calls they did
 * not expect). spec.concurrency describes what one endpoint can take:
 *
 *   - each endpoint has its own Limit (the spec's algorithm and bounds) and Limiter, learning from the
 *     calls sent to it alone, so a slow endpoint's limit falls while its neighbours' do not;
 *   - the pool has one more, admitting calls before the pick: the same algorithm, fed with every call
 *     of the pool, learns a limit per endpoint on average and admits that times the number of endpoints
 *     (ScaledLimit), so a pool of ten with initialLimit 20 starts at 200, not at 20.
 *
 * Both are priority-aware (the Limiter's reserves): sheddable calls are refused first, critical last.
 */
export interface AdmissionDeps {
  clock: Clock;
  random: Random;
  timers?: Timers;
}

export function createAdmission(
  spec: ConcurrencySpec | undefined,
  deps: AdmissionDeps,
  endpointCount: () => number = () => 1,
): Admission {
  if (!spec) return admitAll;
  const limit = new ScaledLimit(createLimitFromSpec(spec, { random: deps.random }), endpointCount);
  return new LimiterAdmission(new Limiter(limit, { clock: deps.clock, timers: deps.timers ?? systemTimers }));
}

/** One endpoint's limiter, or undefined when the pool has no spec.concurrency. */
export function createEndpointLimiter(
  spec: ConcurrencySpec | undefined,
  deps: AdmissionDeps,
): Limiter | undefined {
  if (!spec) return undefined;
  return new Limiter(createLimitFromSpec(spec, { random: deps.random }), {
    clock: deps.clock,
    timers: deps.timers ?? systemTimers,
  });
}

/**
 * A Limit over n endpoints from one learning a per-endpoint limit: limit = max(1, inner.limit · n), and
 * each sample's in-flight count is divided by n (⌈inflight / n⌉) before the inner algorithm sees it, so
 * its "is the limit in use" tests compare like with like. n is read live: endpoints joining or leaving
 * move the pool's limit at once without losing what the algorithm learnt.
 */
export class ScaledLimit implements Limit {
  readonly name: string;

  constructor(
    readonly inner: Limit,
    private readonly n: () => number,
  ) {
    this.name = inner.name;
  }

  get limit(): number {
    return Math.max(1, this.inner.limit * Math.max(1, this.n()));
  }

  onSample(startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    this.inner.onSample(startMs, rttMs, Math.ceil(inflight / Math.max(1, this.n())), dropped);
  }
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
      return {
        release: (outcome, sample = true) =>
          token.release(sample ? releaseOutcome(outcome.code) : 'ignore', outcome.latencyMs),
      };
    } catch (e) {
      if (isSibylError(e, 'ERR_SHED')) return { shed: e.message };
      throw new Error(`limiter failed: ${errorMessage(e)}`, { cause: e });
    }
  }
}
