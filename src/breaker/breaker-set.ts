import type { BreakerStateName, BackendPoolSpec } from '../api/backendpool.js';
import { resolveBreaker } from '../api/resolve.js';
import type { Clock } from '../util/clock.js';
import {
  CircuitBreaker,
  DEFAULT_BREAKER_CONFIG,
  type BreakerConfig,
  type Change,
  type TransitionReason,
} from './circuit-breaker.js';

/** A breaker changed state. `failures` is its failure count at the time. */
export interface BreakerTransition {
  type: 'transition';
  endpoint: string;
  from: BreakerStateName;
  to: BreakerStateName;
  reason: TransitionReason;
  failures: number;
  atMs: number;
}

/** A breaker reached its failure threshold but stays Closed: the pool's ejection cap is full. */
export interface EjectionCapped {
  type: 'capped';
  endpoint: string;
  failures: number;
  ejected: number;
  maxEjected: number;
  atMs: number;
}

export type BreakerEvent = BreakerTransition | EjectionCapped;
/** Called synchronously on the data path: log and count, do not block or throw. */
export type BreakerListener = (event: BreakerEvent) => void;

export interface BreakerSnapshot {
  endpoint: string;
  state: BreakerStateName;
  failures: number;
  forced: boolean;
}

/** BreakerConfig from a BackendPool's spec.circuitBreaker, CRD defaults for what is left out. */
export const breakerConfig = (spec?: BackendPoolSpec['circuitBreaker']): BreakerConfig =>
  resolveBreaker(spec);

/**
 * The breakers of one pool. Adds to the per-endpoint state machine:
 * - an ejection cap: at most `maxEjectionPercent` of the pool's endpoints ejected (Open or HalfOpen) at
 *   once, as Envoy's outlier detection does, and like it at least one when the percentage is above 0.
 *   A breaker that would open beyond the cap stays Closed at its threshold, and is reported once (a
 *   `capped` event) until a success brings it below the threshold; its next failure tries again.
 *   Shrinking the pool never closes a breaker: it only stops new openings.
 * - operator overrides: `forceOpen` holds a breaker Open (not subject to the cap: the operator sees the
 *   fleet and applies the cap there) until `clearOverride`, which closes it. An override for an endpoint
 *   not yet synced applies when it arrives.
 * - membership (`sync`) and a listener told of every transition.
 * Endpoints the set does not know are admitted and their results ignored.
 */
export class BreakerSet {
  private cfg: BreakerConfig;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly overrides = new Set<string>();
  private readonly capped = new Set<string>(); // reported as capped, not yet below the threshold again
  private ejected = 0; // breakers not Closed, kept in step by emit() and sync()
  private readonly clock: Clock;
  private readonly listener: BreakerListener | undefined;

  constructor(config: Partial<BreakerConfig>, deps: { clock: Clock; listener?: BreakerListener }) {
    this.cfg = { ...DEFAULT_BREAKER_CONFIG, ...config };
    this.clock = deps.clock;
    this.listener = deps.listener;
  }

  /** New settings apply from the next question; current states are kept. */
  configure(config: Partial<BreakerConfig>): void {
    this.cfg = { ...DEFAULT_BREAKER_CONFIG, ...config };
  }

  /** The pool is now exactly `ids`: new endpoints start Closed (or Open if overridden); gone ones are dropped. */
  sync(ids: Iterable<string>): void {
    const keep = new Set(ids);
    for (const [id, b] of this.breakers) {
      if (keep.has(id)) continue;
      if (b.state !== 'Closed') this.ejected--;
      this.breakers.delete(id);
      this.capped.delete(id);
    }
    for (const id of keep) {
      if (this.breakers.has(id)) continue;
      const b = new CircuitBreaker(id);
      this.breakers.set(id, b);
      if (this.overrides.has(id)) this.emit(b, b.forceOpen(this.clock.now()));
    }
  }

  /** Whether `id` would take a call now, without taking a half-open slot: for filtering candidates. */
  allows(id: string): boolean {
    const b = this.current(id);
    return !b || b.allows(this.cfg);
  }

  /** Admits a call to `id`, taking a half-open trial slot when half-open. */
  admit(id: string): boolean {
    const b = this.current(id);
    return !b || b.admit(this.cfg);
  }

  /** The admitted call ended with a verdict: ok, or a failure the endpoint is to blame for. */
  onResult(id: string, ok: boolean): void {
    const b = this.current(id);
    if (!b) return;
    const now = this.clock.now();
    const mayOpen = this.ejected < this.maxEjected();
    const effect = b.onResult(ok, now, this.cfg, mayOpen);
    if (effect === 'would-open') {
      if (this.capped.has(id)) return;
      this.capped.add(id);
      this.listener?.({
        type: 'capped',
        endpoint: id,
        failures: b.failures,
        ejected: this.ejected,
        maxEjected: this.maxEjected(),
        atMs: now,
      });
      return;
    }
    if (b.state !== 'Closed' || b.failures < this.cfg.failureThreshold) this.capped.delete(id);
    this.emit(b, effect);
  }

  /** The admitted call ended without a verdict (cancelled by the client): frees a half-open slot. */
  release(id: string): void {
    this.breakers.get(id)?.release();
  }

  state(id: string): BreakerStateName {
    return this.current(id)?.state ?? 'Closed';
  }

  failures(id: string): number {
    return this.breakers.get(id)?.failures ?? 0;
  }

  /** Endpoints ejected now: Open or HalfOpen (a half-open endpoint only takes trial calls). */
  openCount(): number {
    return this.ejected;
  }

  /** The ejection cap for the current pool size. */
  maxEjected(): number {
    const pct = this.cfg.maxEjectionPercent;
    return pct <= 0 ? 0 : Math.max(1, Math.floor((this.breakers.size * pct) / 100));
  }

  forceOpen(id: string): void {
    this.overrides.add(id);
    const b = this.breakers.get(id);
    if (b) this.emit(b, b.forceOpen(this.clock.now()));
  }

  clearOverride(id: string): void {
    this.overrides.delete(id);
    const b = this.breakers.get(id);
    if (b) this.emit(b, b.clearOverride());
  }

  snapshot(): BreakerSnapshot[] {
    return [...this.breakers.keys()].sort().map((id) => {
      const b = this.current(id) as CircuitBreaker;
      return { endpoint: id, state: b.state, failures: b.failures, forced: b.forced };
    });
  }

  /** The breaker for `id` with any due Open → HalfOpen applied. */
  private current(id: string): CircuitBreaker | undefined {
    const b = this.breakers.get(id);
    if (b) this.emit(b, b.refresh(this.clock.now(), this.cfg));
    return b;
  }

  private emit(b: CircuitBreaker, change: Change | undefined): void {
    if (!change) return;
    if (change.from === 'Closed') this.ejected++;
    if (change.to === 'Closed') this.ejected--;
    this.listener?.({
      type: 'transition',
      endpoint: b.id,
      ...change,
      failures: b.failures,
      atMs: this.clock.now(),
    });
  }
}
