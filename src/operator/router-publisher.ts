import type { RoutingState } from '../control/routing-state.js';
import type { PoolView, RoutingPublisher } from './pool-view.js';
import { wirePool, type PoolCacheEntry } from './wire-pool.js';

/**
 * Publishes each pool's routing entry to the RoutingState that the control server pushes to sibyl
 * routers. RoutingState ignores an entry equal to the one it holds, so publishing is idempotent.
 */
export class RouterPublisher implements RoutingPublisher {
  constructor(
    private readonly routing: RoutingState,
    /** The cache config and flush token of the CacheTier serving a pool (tier-reconciler.ts writes them). */
    private readonly cacheFor: (pool: string) => PoolCacheEntry | undefined,
  ) {}

  publish(key: string, view: PoolView | undefined): void {
    this.routing.update(key, view ? wirePool(view, this.cacheFor(key)) : undefined);
  }
}
