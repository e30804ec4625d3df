import type { Logger } from 'pino';
import { resolvePoolSpec } from '../api/resolve.js';
import type { EventRecorder } from '../kube/events.js';
import type { Store } from '../kube/store.js';
import type { RefitResult } from '../model/refit.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { involved, type PoolObject } from './context.js';

export interface RefitScheduleDeps {
  model: { refit(minSamples: number): Promise<RefitResult | undefined> };
  pools: Store<PoolObject>;
  events: Pick<EventRecorder, 'record'>;
  /** A pool whose status should show the outcome (ModelReady, status.model). */
  enqueuePool: (key: string) => void;
  clock: Clock;
  log: Logger;
}

/**
 * When to refit the latency model: at the shortest retrain interval among Predictive pools, once the
 * routers sent the fewest samples any of them asks for. Every Predictive pool hears what happened
 * (ModelPromoted or ModelRejected) and is reconciled again.
 */
export class RefitSchedule {
  private lastRefit = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly d: RefitScheduleDeps) {}

  /** Looks every `everyMs` whether a refit is due. */
  start(everyMs = 5_000): void {
    this.timer = setInterval(() => void this.tick(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    const { d } = this;
    const pools = d.pools
      .list()
      .map((p) => ({ p, spec: resolvePoolSpec(p.spec) }))
      .filter(({ spec }) => spec.balancing.policy === 'Predictive');
    if (pools.length === 0) return;
    const interval = Math.min(...pools.map(({ spec }) => spec.balancing.model.retrainIntervalMs));
    const minSamples = Math.min(...pools.map(({ spec }) => spec.balancing.model.minSamples));
    if (d.clock.now() - this.lastRefit < interval) return;
    let r;
    try {
      r = await d.model.refit(minSamples);
    } catch (e) {
      d.log.error({ err: errorMessage(e) }, 'model refit failed');
      return;
    }
    if (!r) return;
    this.lastRefit = d.clock.now();
    for (const { p } of pools) {
      void d.events.record(
        involved(p),
        r.promoted ? 'Normal' : 'Warning',
        r.promoted ? 'ModelPromoted' : 'ModelRejected',
        r.reason,
      );
      d.enqueuePool(`${p.metadata.namespace}/${p.metadata.name}`);
    }
  }
}
