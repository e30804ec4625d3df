import type { OperatorWeights } from './operator-weights.js';
import type { TelemetryView } from './router.js';
import type { SimServer } from './server.js';

/**
 * What the operator knows about the servers, and when. Every `metricsIntervalS` it scrapes each server:
 * CPU (slot-time in use over the interval, plus any neighbour's load, averaged over the interval when
 * an event changes it), the calls it holds (running and queued) at that instant, and the fleet-wide
 * error rate: the share of calls that every router saw fail there (any status, timeouts included) over
 * the interval. Each router receives the latest scrape at its own `reportIntervalS` push, so what it
 * acts on is between one push and one scrape interval old, and about half an interval older still for
 * figures averaged over the interval. With `weights` (the data planes' policies), each scrape also
 * sets the endpoint weights the operator would push then, which reach the routers on the same pushes.
 */
export class Telemetry {
  readonly view: TelemetryView;
  /** False until the first scrape: a router that has heard nothing keeps no figures. */
  ready = false;
  private readonly calls: Float64Array;
  private readonly failures: Float64Array;
  private readonly lastBusy: Float64Array;
  private lastAt = 0;

  constructor(
    private readonly servers: readonly SimServer[],
    private readonly weights?: OperatorWeights,
  ) {
    const n = servers.length;
    this.view = {
      atMs: 0,
      cpu: new Float64Array(n),
      queueLength: new Float64Array(n),
      errorRate: new Float64Array(n),
      ...(weights ? { weight: weights.weight } : {}),
    };
    this.calls = new Float64Array(n);
    this.failures = new Float64Array(n);
    this.lastBusy = new Float64Array(n);
  }

  /** A router saw a call to `server` end after `latencyMs`. */
  record(server: number, failed: boolean, latencyMs: number): void {
    this.calls[server]!++;
    if (failed) this.failures[server]!++;
    this.weights?.record(server, failed, latencyMs);
  }

  scrape(now: number): void {
    const dt = now - this.lastAt;
    if (!(dt > 0)) return;
    const v = this.view;
    for (const s of this.servers) {
      const i = s.index;
      const busy = s.busyMs(now);
      v.cpu[i] =
        (busy - (this.lastBusy[i] as number)) / (s.concurrency * dt) + s.antagonistOver(this.lastAt, now);
      this.lastBusy[i] = busy;
      v.queueLength[i] = s.held;
      const n = this.calls[i] as number;
      v.errorRate[i] = n > 0 ? (this.failures[i] as number) / n : 0;
      this.calls[i] = 0;
      this.failures[i] = 0;
    }
    this.weights?.scrape(now);
    v.atMs = now;
    this.lastAt = now;
    this.ready = true;
  }
}
