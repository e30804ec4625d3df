import { Counter, type Registry } from 'prom-client';

export type CollectionsCounter = Counter<'source' | 'result'>;

/**
 * sibyl_telemetry_collections_total{source, result}: Prometheus scrapes and PodMetrics lists, ok or
 * error. Shared by the sources on one registry (a registry refuses a second metric of one name).
 */
export function collectionsCounter(registry: Registry): CollectionsCounter {
  const name = 'sibyl_telemetry_collections_total';
  return (
    (registry.getSingleMetric(name) as CollectionsCounter | undefined) ??
    new Counter({
      name,
      help: 'Resource telemetry collections (Prometheus scrapes, PodMetrics lists), by source and result.',
      labelNames: ['source', 'result'],
      registers: [registry],
    })
  );
}
