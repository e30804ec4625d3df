import type { Logger } from 'pino';
import type { BreakerSpec } from '../api/resolve.js';
import { BreakerSet, type BreakerEvent } from '../breaker/index.js';
import type { CallOutcome } from '../balancer/types.js';
import { Status } from '../grpc/status.js';
import type { Clock } from '../util/clock.js';
import type { EndpointGate } from './seams.js';

/**
 * A pool's circuit breakers (src/breaker) as the pipeline's EndpointGate. A call's verdict is its
 * outcome's `ok` (isServerFault); a call the client cancelled says nothing about the endpoint and only
 * frees its half-open slot.
 */
export class BreakerGate implements EndpointGate {
  readonly breakers: BreakerSet;

  constructor(
    spec: BreakerSpec,
    deps: {
      clock: Clock;
      log: Logger;
      pool: string;
      onEvent?: (e: BreakerEvent) => void;
      /** An endpoint's breaker lets it be tried again (Open → HalfOpen; Balancer.onEndpointReadmitted). */
      onReadmitted?: (id: string) => void;
    },
  ) {
    this.breakers = new BreakerSet(spec, {
      clock: deps.clock,
      listener: (e) => {
        if (e.type === 'transition') {
          deps.log.info(
            {
              pool: deps.pool,
              endpoint: e.endpoint,
              from: e.from,
              to: e.to,
              reason: e.reason,
              failures: e.failures,
            },
            `breaker ${e.to}`,
          );
        } else {
          deps.log.warn(
            { pool: deps.pool, endpoint: e.endpoint, ejected: e.ejected, maxEjected: e.maxEjected },
            'breaker would open but the ejection cap is full',
          );
        }
        if (e.type === 'transition' && e.from === 'Open' && e.to === 'HalfOpen')
          deps.onReadmitted?.(e.endpoint);
        deps.onEvent?.(e);
      },
    });
  }

  configure(spec: BreakerSpec): void {
    this.breakers.configure(spec);
  }

  allows(id: string): boolean {
    return this.breakers.allows(id);
  }

  admit(id: string): boolean {
    return this.breakers.admit(id);
  }

  onCallEnded(id: string, outcome: CallOutcome): void {
    if (outcome.code === Status.CANCELLED) this.breakers.release(id);
    else this.breakers.onResult(id, outcome.ok);
  }

  /** Probes go only to a Closed breaker, and take no half-open trial slot (picker.ts CallGate). */
  admitProbe(id: string): boolean {
    return this.breakers.state(id) === 'Closed';
  }

  /**
   * A probe's verdict counts like a call's while the breaker is still Closed. Not otherwise: in
   * HalfOpen it would be taken for a trial's, and an Open breaker ignores late results anyway.
   */
  onProbeEnded(id: string, outcome: CallOutcome): void {
    if (outcome.code !== Status.CANCELLED && this.breakers.state(id) === 'Closed')
      this.breakers.onResult(id, outcome.ok);
  }

  /**
   * A connect to `id` made in the background failed (session-pool.ts): a failure like a call's, so a
   * dead endpoint's breaker opens though no call was sent there.
   */
  onConnectFailed(id: string): void {
    this.breakers.onResult(id, false);
  }

  sync(ids: Iterable<string>): void {
    this.breakers.sync(ids);
  }
}
