import type { BreakerStateName } from '../api/backendpool.js';
import type { BreakerSpec } from '../api/resolve.js';
import type {
  EndpointView,
  FleetBreakerTransition,
  FleetBreakers,
  FleetTelemetry,
} from '../telemetry/fleet.js';
import type { PoolObject } from './context.js';
import type { ResolvedEndpoint } from './endpoints.js';

/**
 * A pool's fleet-wide breakers (FleetBreakers holds the algorithm): each endpoint evaluated once per
 * reconcile with the pool's breaker settings, every transition reported, and the view of an endpoint
 * whose breaker just closed read again (closing forgets its old figures).
 */
export class PoolBreakers {
  constructor(
    private readonly breakers: FleetBreakers,
    private readonly telemetry: FleetTelemetry,
    private readonly onTransition: (pool: PoolObject, t: FleetBreakerTransition) => void,
  ) {}

  /** Evaluates the pool's endpoints; updates `views` in place; answers the addresses held open. */
  evaluate(
    key: string,
    pool: PoolObject,
    cfg: BreakerSpec,
    endpoints: readonly ResolvedEndpoint[],
    views: Map<string, EndpointView | undefined>,
  ): Set<string> {
    const open = new Set<string>();
    for (const e of endpoints) {
      const t = this.breakers.evaluate(key, e.address, cfg);
      if (t) this.onTransition(pool, t);
      if (t?.to === 'Closed') views.set(e.address, this.telemetry.view(key, e.address));
      if (this.breakers.isOpen(key, e.address)) open.add(e.address);
    }
    return open;
  }
}

/** The breaker status shows: open when the fleet holds it open or most routers that call it have theirs open. */
export function breakerState(forceOpen: boolean, view: EndpointView | undefined): BreakerStateName {
  return forceOpen || (view && view.openBreakers * 2 > view.routers) ? 'Open' : 'Closed';
}
