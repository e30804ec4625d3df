import type { LoadReport, MethodLoad, WireTrainingSample } from '../control/messages.js';
import type { AccessLogReport } from '../telemetry/als.js';
import type { CallCounts } from '../telemetry/call-counts.js';
import type { EndpointView, FleetTelemetry } from '../telemetry/fleet.js';
import { LATENCY_BOUNDS_MS } from '../telemetry/histogram.js';
import type { MethodLatencies } from '../telemetry/method-latency.js';
import type { Clock } from '../util/clock.js';
import type { CacheView } from './cache-view.js';
import { typicalLatencyMs } from './endpoint-views.js';
import { observedSample } from './fleet-features.js';

export interface TelemetryIntakeDeps {
  telemetry: FleetTelemetry;
  /** Each pool's latencies per gRPC method, for per-method deadlines. */
  methods: MethodLatencies;
  caches: CacheView;
  /** Where training samples go (ModelManager.addSamples). */
  addSamples: (samples: readonly WireTrainingSample[]) => void;
  /** Pools whose figures changed: reconciled again. */
  changed: (pool: string) => void;
  clock: Clock;
}

/**
 * Every reporter's figures into the fleet view (docs/architecture.md, "Operator"): routers' LoadReports
 * (calls, latencies per method, cache counters, training samples), Envoys' access logs (counted as a
 * router counts its calls, with samples made from the fleet view: fleet-features.ts), the backends'
 * own counters (Prometheus, the server side) and their out-of-band ORCA figures.
 */
export class TelemetryIntake {
  constructor(private readonly d: TelemetryIntakeDeps) {}

  router(r: LoadReport): void {
    this.d.telemetry.ingest(r);
    const now = this.d.clock.now();
    this.d.caches.ingest(r.routerId, r.caches, now);
    for (const [pool, methods] of methodCounts(r.methods ?? []))
      this.d.methods.record(pool, methods, now, 'client');
    this.d.addSamples(r.samples);
    this.touched(r);
  }

  /** An Envoy's interval: samples first, from what was known before its calls are taken in. */
  accessLogs(r: AccessLogReport): void {
    const { telemetry } = this.d;
    const pools = new Map<string, { views: Map<string, EndpointView | undefined>; baselineMs?: number }>();
    const samples: WireTrainingSample[] = [];
    for (const c of r.observed) {
      let p = pools.get(c.pool);
      if (!p) {
        const views = new Map(telemetry.addresses(c.pool).map((a) => [a, telemetry.view(c.pool, a)]));
        pools.set(c.pool, (p = { views, baselineMs: typicalLatencyMs(views.values()) }));
      }
      // An endpoint the fleet knew nothing of yet gives no sample: there were no features to learn from.
      const v = p.views.get(c.address);
      if (v) samples.push(observedSample(c, v, p.baselineMs));
    }
    telemetry.ingest(r.report);
    const now = this.d.clock.now();
    for (const [pool, methods] of r.methods) this.d.methods.record(pool, methods, now, 'client');
    this.d.addSamples(samples);
    this.touched(r.report);
  }

  /** A backend's own counts of the calls it served (one scrape), in all and per gRPC method. */
  served(r: LoadReport, methods: ReadonlyMap<string, CallCounts> = new Map()): void {
    this.d.telemetry.ingest(r, 'server');
    const now = this.d.clock.now();
    for (const pool of new Set(r.endpoints.map((e) => e.pool))) this.d.methods.record(pool, methods, now);
    this.touched(r);
  }

  /** An endpoint's CPU and memory utilisation, out of band (ORCA). */
  load(pool: string, address: string, figures: { cpu?: number; memory?: number }): void {
    this.d.telemetry.observeLoad(pool, address, figures);
  }

  private touched(r: LoadReport): void {
    for (const pool of new Set(r.endpoints.map((e) => e.pool))) this.d.changed(pool);
  }
}

/**
 * A router's per-method latencies by pool, as an Envoy's access logs give them (telemetry/als.ts).
 * Histograms in other bounds than the shared ones are left out (as FleetTelemetry leaves out such an
 * endpoint's latencies): re-bucketing them would take the bounds on trust.
 */
function methodCounts(loads: readonly MethodLoad[]): Map<string, Map<string, CallCounts>> {
  const out = new Map<string, Map<string, CallCounts>>();
  for (const m of loads) {
    if (m.latencyCounts.length !== LATENCY_BOUNDS_MS.length || !(m.calls > 0)) continue;
    let pool = out.get(m.pool);
    if (!pool) out.set(m.pool, (pool = new Map()));
    pool.set(m.method, { calls: m.calls, errors: new Map(), counts: m.latencyCounts.map(Number) });
  }
  return out;
}
