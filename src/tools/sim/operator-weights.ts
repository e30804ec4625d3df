import { serviceTimeMs } from '../../operator/xds-publisher.js';
import { LATENCY_BOUNDS_MS, bucketOf, quantile } from '../../telemetry/histogram.js';
import { PoolWeights } from '../../xds/weights.js';
import type { XdsEndpointInput } from '../../xds/types.js';

/** The operator's fleet telemetry window (TELEMETRY_WINDOW_MS in src/operator/control-plane.ts). */
const WINDOW_MS = 30_000;
const B = LATENCY_BOUNDS_MS.length;

/**
 * The endpoint weights the operator pushes to data planes (src/xds/weights.ts), worked out at each of
 * the simulator's telemetry scrapes from what the operator's fleet view would hold then: the latency
 * histograms the routers report for each server (every call they saw end there, failures and
 * timeouts included, in the routers' LATENCY_BOUNDS_MS buckets), over the telemetry window and over
 * the latest interval, with the share of them that failed. From those, the publisher's own functions: serviceTimeMs (the lower of the
 * two medians, src/operator/xds-publisher.ts), then PoolWeights (capacity = concurrency / service
 * time, quantised, with hysteresis). The routers report no per-endpoint concurrency limit in the
 * simulator (it has no per-endpoint limiter), so, as the publisher does then, concurrency is left out
 * and every server counts as one slot: weights are relative, so this is exact only where servers have
 * equal slots. Nothing is drawn at random: the runs of other policies are untouched.
 */
export class OperatorWeights {
  /** The pushed weight per server, as of the last scrape. */
  readonly weight: Float64Array;
  private current: Float64Array;
  private failed: Float64Array;
  private readonly slices: { at: number; counts: Float64Array; failed: Float64Array }[] = [];
  private readonly pool = new PoolWeights();

  constructor(private readonly servers: number) {
    this.weight = new Float64Array(servers).fill(1);
    this.current = new Float64Array(servers * B);
    this.failed = new Float64Array(servers);
  }

  /** A router saw a call to `server` end after `latencyMs`. */
  record(server: number, failed: boolean, latencyMs: number): void {
    this.current[server * B + bucketOf(latencyMs)]!++;
    if (failed) this.failed[server]!++;
  }

  /** The operator's view at `now`: the interval just ended joins the window, and weights are set. */
  scrape(now: number): void {
    this.slices.push({ at: now, counts: this.current, failed: this.failed });
    this.current = new Float64Array(this.servers * B);
    this.failed = new Float64Array(this.servers);
    while ((this.slices[0] as { at: number }).at < now - WINDOW_MS) this.slices.shift();
    const latest = (this.slices.at(-1) as { counts: Float64Array }).counts;
    const endpoints: XdsEndpointInput[] = [];
    for (let i = 0; i < this.servers; i++) {
      const window = new Array<number>(B).fill(0);
      let failed = 0;
      for (const s of this.slices) {
        for (let b = 0; b < B; b++) window[b]! += s.counts[i * B + b] as number;
        failed += s.failed[i] as number;
      }
      const calls = window.reduce((a, b) => a + b, 0);
      const recent = Array.from(latest.subarray(i * B, (i + 1) * B));
      const p50Ms = quantile(window, 0.5);
      const recentP50Ms = quantile(recent, 0.5);
      const s = serviceTimeMs({
        ...(p50Ms !== undefined ? { p50Ms } : {}),
        ...(recentP50Ms !== undefined ? { recentP50Ms } : {}),
      });
      endpoints.push({
        address: addressOf(i),
        ready: true,
        draining: false,
        ...(s !== undefined ? { predictedServiceMs: s } : {}),
        ...(calls > 0 ? { errorRate: failed / calls } : {}),
      });
    }
    const w = this.pool.update(endpoints);
    for (let i = 0; i < this.servers; i++) this.weight[i] = w.get(addressOf(i)) as number;
  }
}

const addressOf = (i: number) => `server-${i}:0`;
