import type { Random } from '../util/clock.js';
import { SibylError } from '../util/errors.js';

/**
 * Adaptive concurrency, after Netflix's concurrency-limits: a `Limit` is the algorithm alone (it learns
 * how many calls may be in flight from the samples it is shown); a `Limiter` enforces it. Limits are
 * pure and synchronous, so they can be tested sample by sample and run unchanged in the simulator.
 */
export interface Limit {
  readonly name: string;
  /**
   * One finished call. `startMs`: when it was admitted (Clock ms); `rttMs`: how long it took;
   * `inflight`: calls in flight when it was admitted, itself included; `dropped`: it timed out or the
   * server refused it for load (the congestion signal a latency sample cannot give).
   */
  onSample(startMs: number, rttMs: number, inflight: number, dropped: boolean): void;
  /** The current limit: an integer in [minLimit, maxLimit]. */
  readonly limit: number;
}

export interface LimitOptions {
  initialLimit?: number;
  minLimit?: number;
  maxLimit?: number;
  /** AIMD: latency above this counts as a drop. */
  targetLatencyMs?: number;
  /** Algorithm-specific knobs (documented on each algorithm). */
  [knob: string]: number | undefined;
}

export interface LimitDeps {
  random: Random;
}

export type LimitFactory = (options: LimitOptions, deps: LimitDeps) => Limit;

export interface Bounds {
  initial: number;
  min: number;
  max: number;
}

/** The CRD's defaults (src/api/backendpool.ts Concurrency): initial 20, min 1, max 1000. */
export function bounds(o: LimitOptions): Bounds {
  const b = { initial: o.initialLimit ?? 20, min: o.minLimit ?? 1, max: o.maxLimit ?? 1000 };
  if (!(b.min >= 1 && b.min <= b.initial && b.initial <= b.max && Number.isFinite(b.max))) {
    throw new SibylError(
      'ERR_CONFIG_INVALID',
      `concurrency limits must satisfy 1 <= minLimit (${b.min}) <= initialLimit (${b.initial}) <= maxLimit (${b.max})`,
    );
  }
  return b;
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}
