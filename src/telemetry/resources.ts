import type { TelemetrySpec } from '../api/resolve.js';

/**
 * CPU and memory of a backend, from wherever they can be had: the metrics API (metrics.k8s.io
 * PodMetrics) or the backend's own Prometheus endpoint. ORCA figures come separately, through the
 * routers' reports.
 */
export interface ResourceFigures {
  /** CPU in cores (a rate: cores used on average over the last interval). */
  cpuCores?: number;
  /** Resident memory, bytes. */
  memoryBytes?: number;
  /** Where the figures came from. */
  source: 'metrics-api' | 'prometheus';
  /** Age of the figures, ms (stale figures are aged by their consumers, never taken as fresh). */
  ageMs: number;
}

export interface ResourceEndpoint {
  address: string; // host:port the pool routes to
  pod?: string;
  namespace: string;
}

/** The operator asks per pool; a source that knows nothing returns an empty map. */
export interface ResourceSource {
  /** Starts or refreshes collection for a pool's endpoints with the pool's telemetry settings. */
  track(poolKey: string, endpoints: readonly ResourceEndpoint[], settings: TelemetrySettings): void;
  /** Stops collecting for a pool. */
  untrack(poolKey: string): void;
  figures(poolKey: string): ReadonlyMap<string, ResourceFigures>;
  stop(): void;
}

/** A pool's spec.telemetry with its defaults applied (api/resolve.ts), as the sources read it. */
export type TelemetrySettings = Pick<
  TelemetrySpec,
  'intervalMs' | 'prometheus' | 'metricsApi' | 'orca' | 'orcaIntervalMs'
>;
