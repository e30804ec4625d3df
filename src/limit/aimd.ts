import { registerLimit } from './registry.js';
import { bounds, clamp, type Bounds, type Limit, type LimitOptions } from './types.js';

/**
 * AIMD, as Netflix's AIMDLimit (TCP Reno's congestion window applied to concurrency):
 *
 *   on a drop, or rtt > targetLatencyMs:   limit = max(min, min(limit − 1, ⌊limit · backoffRatio⌋))
 *   else, if inflight · 2 ≥ limit:         limit = limit + 1
 *
 * The second condition keeps an idle client from growing a limit it never tests.
 * Options: targetLatencyMs (default 5000, Netflix's timeout), backoffRatio (0.9, in [0.5, 1)).
 */
export class AimdLimit implements Limit {
  readonly name = 'AIMD';
  private current: number;
  private readonly b: Bounds;
  private readonly targetMs: number;
  private readonly backoff: number;

  constructor(options: LimitOptions = {}) {
    this.b = bounds(options);
    this.current = Math.floor(this.b.initial);
    this.targetMs = options.targetLatencyMs ?? 5000;
    this.backoff = clamp(options.backoffRatio ?? 0.9, 0.5, 0.99);
  }

  get limit(): number {
    return this.current;
  }

  onSample(_startMs: number, rttMs: number, inflight: number, dropped: boolean): void {
    if (dropped || rttMs > this.targetMs) {
      this.current = Math.min(this.current - 1, Math.floor(this.current * this.backoff));
    } else if (inflight * 2 >= this.current) {
      this.current += 1;
    }
    this.current = clamp(this.current, Math.ceil(this.b.min), Math.floor(this.b.max));
  }
}

registerLimit('AIMD', (options) => new AimdLimit(options));
