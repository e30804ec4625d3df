import type { Logger } from 'pino';
import { resolvePoolSpec } from '../api/resolve.js';
import type { EventRecorder } from '../kube/events.js';
import type { Store } from '../kube/store.js';
import type { RefitResult } from '../model/refit.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { involved, type PoolObject } from './context.js';

export interface RefitScheduleDeps {
  model: {
    refit(minSamples: number): Promise<RefitResult | undefined>;
    /** Refits the quantile calibration on live samples when coverage misses; what it did, if anything. */
    recalibrate(): string | undefined;
    /** Measures live p99 coverage (status and the gauge). */
    measureLiveCoverage(): unknown;
  };
  pools: Store<PoolObject>;
  events: Pick<EventRecorder, 'record'>;
  /** A pool whose status should show the outcome (ModelReady, status.model). */
  enqueuePool: (key: string) => void;
  clock: Clock;
  log: Logger;
}

/** How often live p99 coverage is measured (a forward pass per recent sample: not every tick). */
const COVERAGE_EVERY_MS = 30_000;

/**
 * When to refit the latency model: at the shortest retrain interval among Predictive pools, once the
 * routers sent the fewest samples any of them asks for. Every Predictive pool hears what happened
 * (ModelPromoted or ModelRejected) and is reconciled again. A refit that promotes nothing is followed by
 * a recalibration of the quantiles on live samples, when their coverage misses (ModelRecalibrated).
 * Live coverage is measured every COVERAGE_EVERY_MS, and the pools reconciled, so status shows it.
 */
export class RefitSchedule {
  private lastRefit = 0;
  private lastCoverage = -Infinity;
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
    const keys = pools.map(({ p }) => `${p.metadata.namespace}/${p.metadata.name}`);
    if (d.clock.now() - this.lastCoverage >= COVERAGE_EVERY_MS) {
      this.lastCoverage = d.clock.now();
      d.model.measureLiveCoverage();
      keys.forEach(d.enqueuePool);
    }
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
    const recalibrated = r.promoted ? undefined : d.model.recalibrate();
    for (const { p } of pools) {
      void d.events.record(
        involved(p),
        r.promoted ? 'Normal' : 'Warning',
        r.promoted ? 'ModelPromoted' : 'ModelRejected',
        r.reason,
      );
      if (recalibrated) void d.events.record(involved(p), 'Normal', 'ModelRecalibrated', recalibrated);
    }
    keys.forEach(d.enqueuePool);
  }
}
