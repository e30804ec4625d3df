import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Slots } from './slots.js';

/**
 * The backend's Prometheus series. Each backend has its own registry (tests run several in one
 * process); the process series (process_cpu_seconds_total, process_resident_memory_bytes) come from
 * prom-client's default metrics, which is what the operator's telemetry scrapes (docs/architecture.md, "API", telemetry).
 */
export class BackendMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'code'>;

  constructor(slots: Slots, opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'sibyl_backend_requests_total',
      help: 'Calls served, by method and gRPC status code.',
      labelNames: ['method', 'code'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'sibyl_backend_inflight',
      help: 'Calls holding a slot.',
      registers: [this.registry],
      collect() {
        this.set(slots.busy);
      },
    });
    new Gauge({
      name: 'sibyl_backend_queued',
      help: 'Calls waiting for a slot.',
      registers: [this.registry],
      collect() {
        this.set(slots.queued);
      },
    });
  }
}
