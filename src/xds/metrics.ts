import { Counter, Gauge, type Registry } from 'prom-client';
import type { XdsClientKind } from './types.js';

/** The ADS server's metrics: clients by kind, responses sent, and refusals by pool. */
export class XdsMetrics {
  readonly rejected: Counter<'pool' | 'kind' | 'type'>;
  readonly responses: Counter<'kind' | 'type'>;

  constructor(registry: Registry, clients: () => Iterable<{ kind: XdsClientKind }>) {
    this.rejected = new Counter({
      name: 'sibyl_xds_rejected_total',
      help: 'xDS responses a client refused (NACK), by the pool whose resources it refused, client kind and type.',
      labelNames: ['pool', 'kind', 'type'],
      registers: [registry],
    });
    this.responses = new Counter({
      name: 'sibyl_xds_responses_total',
      help: 'xDS responses sent, by client kind and type.',
      labelNames: ['kind', 'type'],
      registers: [registry],
    });
    new Gauge({
      name: 'sibyl_xds_clients',
      help: 'Connected xDS clients, by kind (envoy, grpc-go, grpc-js, grpc, unknown).',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clients()) this.inc({ kind: c.kind });
      },
    });
  }
}
