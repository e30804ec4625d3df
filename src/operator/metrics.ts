import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The operator's metrics (docs/architecture.md, "Observability"), on a registry of its own so several operators can share a process in tests. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'sibyl_reconcile_duration_seconds',
    help: 'Time spent in one reconcile.',
    labelNames: ['kind'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'sibyl_reconcile_errors_total',
    help: 'Reconciles that failed and were retried.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'sibyl_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: 'sibyl_informer_restarts_total',
    help: 'Informer watch restarts, by informer and reason.',
    labelNames: ['informer', 'reason'],
    registers: [this.registry],
  });
  readonly statusWrites = new Counter({
    name: 'sibyl_status_writes_total',
    help: 'Status subresource writes.',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly statusSkipped = new Counter({
    name: 'sibyl_status_writes_skipped_total',
    help: 'Reconciles that wrote no status, by why (unchanged or deferred by the status interval).',
    labelNames: ['kind', 'why'],
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'sibyl_leader',
    help: '1 while this replica leads.',
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'sibyl_operator_' });
  }
}
