import type { BreakerSpec } from '../../api/resolve.js';
import type { Clock } from '../../util/clock.js';

/**
 * Envoy's outlier detection as sibyl programs it for a pool (src/xds/envoy.ts envoyCluster):
 * consecutive_5xx and consecutive_gateway_failure at the breaker's failureThreshold (a gRPC failure
 * counts by the HTTP status its grpc-status maps to), base_ejection_time at its recoveryTimeout,
 * max_ejection_percent at its maxEjectionPercent. From Envoy's docs (arch_overview/upstream/
 * outlier): a host is ejected as soon as it reaches the consecutive-failure threshold, for
 * base_ejection_time × the number of times it has been ejected, unless the ejected hosts already
 * make up max_ejection_percent of the cluster; it returns when that time has passed (Envoy checks at
 * each 1 s interval; here at the next pick). The simulator's EnvoyLeastRequest runs it, since a real
 * Envoy sibyl programs always does.
 */
export class OutlierDetection {
  private readonly hosts = new Map<string, { consecutive: number; ejections: number; until: number }>();

  constructor(
    private readonly spec: BreakerSpec,
    private readonly clock: Clock,
  ) {}

  /** Whether `id` takes calls now (not ejected). */
  available(id: string): boolean {
    const h = this.hosts.get(id);
    return !h || h.until <= this.clock.now();
  }

  /** A call to `id` ended; `clusterSize` hosts make up the cluster. */
  onResult(id: string, ok: boolean, clusterSize: number): void {
    let h = this.hosts.get(id);
    if (!h) this.hosts.set(id, (h = { consecutive: 0, ejections: 0, until: 0 }));
    if (ok) {
      h.consecutive = 0;
      return;
    }
    if (++h.consecutive < this.spec.failureThreshold || !this.available(id)) return;
    if (this.ejected() + 1 > (this.spec.maxEjectionPercent / 100) * clusterSize) return;
    h.ejections++;
    h.consecutive = 0;
    h.until = this.clock.now() + this.spec.recoveryTimeoutMs * h.ejections;
  }

  private ejected(): number {
    const now = this.clock.now();
    let n = 0;
    for (const h of this.hosts.values()) if (h.until > now) n++;
    return n;
  }
}
