import type { BreakerStateName } from '../api/backendpool.js';
import { resolveBreaker } from '../api/resolve.js';

/**
 * One endpoint's circuit breaker (docs/architecture.md, "Balancing, breakers and limits"), the classic three-state machine (Nygard, "Release It!";
 * resilience4j and Envoy's outlier detection for the details):
 *
 *   Closed   → Open      after `failureThreshold` failures, counted up by a failure and down by one per
 *                         success (a success forgives one failure, it does not wipe the slate)
 *   Open     → HalfOpen  once `recoveryTimeoutMs` has passed (observed lazily, on the next question)
 *   HalfOpen → Closed    after `halfOpenMaxCalls` trial calls succeed; at most that many run at once
 *   HalfOpen → Open      on any trial failure
 *
 * An operator override holds the breaker Open with no recovery timer until it is cleared, which closes
 * it. Results of calls admitted before the current state (a late failure while Open, an old call ending
 * during HalfOpen with no trial in flight) are ignored: they say nothing about the present.
 *
 * This class is the state machine only; `BreakerSet` adds the pool-wide ejection cap and the listener.
 */
export interface BreakerConfig {
  failureThreshold: number;
  recoveryTimeoutMs: number;
  halfOpenMaxCalls: number;
  maxEjectionPercent: number;
}

/** The CRD's defaults (src/api/backendpool.ts CircuitBreaker, resolved by src/api/resolve.ts). */
export const DEFAULT_BREAKER_CONFIG: Readonly<BreakerConfig> = Object.freeze(resolveBreaker(undefined));

export type TransitionReason =
  | 'failures' // Closed → Open
  | 'recovery-timeout' // Open → HalfOpen
  | 'trial-failed' // HalfOpen → Open
  | 'trials-succeeded' // HalfOpen → Closed
  | 'operator-open' // any → Open
  | 'operator-clear'; // Open → Closed

export interface Change {
  from: BreakerStateName;
  to: BreakerStateName;
  reason: TransitionReason;
}

/** What a result did: a transition, the breaker would open but may not (cap), or nothing. */
export type ResultEffect = Change | 'would-open' | undefined;

export class CircuitBreaker {
  state: BreakerStateName = 'Closed';
  failures = 0;
  forced = false;
  private successes = 0; // in HalfOpen
  private trials = 0; // HalfOpen calls admitted and not yet ended
  private openedAtMs = 0;

  constructor(readonly id: string) {}

  /** Open → HalfOpen when the recovery timeout has passed. */
  refresh(now: number, cfg: BreakerConfig): Change | undefined {
    if (this.state !== 'Open' || this.forced || now - this.openedAtMs < cfg.recoveryTimeoutMs)
      return undefined;
    this.state = 'HalfOpen';
    this.successes = 0;
    this.trials = 0;
    return { from: 'Open', to: 'HalfOpen', reason: 'recovery-timeout' };
  }

  /** Whether a call would be admitted now (call `refresh` first). */
  allows(cfg: BreakerConfig): boolean {
    return this.state === 'Closed' || (this.state === 'HalfOpen' && this.trials < cfg.halfOpenMaxCalls);
  }

  /** Admits a call if allowed, taking a trial slot in HalfOpen. */
  admit(cfg: BreakerConfig): boolean {
    if (!this.allows(cfg)) return false;
    if (this.state === 'HalfOpen') this.trials++;
    return true;
  }

  /** An admitted call ended without a verdict (cancelled): give its trial slot back. */
  release(): void {
    if (this.state === 'HalfOpen' && this.trials > 0) this.trials--;
  }

  /** Records a result; `mayOpen` says whether the pool's ejection cap lets this breaker open. */
  onResult(ok: boolean, now: number, cfg: BreakerConfig, mayOpen: boolean): ResultEffect {
    switch (this.state) {
      case 'Closed':
        if (ok) {
          this.failures = Math.max(0, this.failures - 1);
          return undefined;
        }
        this.failures = Math.min(this.failures + 1, cfg.failureThreshold);
        if (this.failures < cfg.failureThreshold) return undefined;
        if (!mayOpen) return 'would-open';
        return this.open(now, 'failures');
      case 'HalfOpen':
        if (this.trials === 0) return undefined; // a call from before the trial period
        this.trials--;
        if (!ok) return this.open(now, 'trial-failed');
        if (++this.successes < cfg.halfOpenMaxCalls) return undefined;
        this.state = 'Closed';
        this.failures = 0;
        return { from: 'HalfOpen', to: 'Closed', reason: 'trials-succeeded' };
      case 'Open':
        return undefined;
    }
  }

  forceOpen(now: number): Change | undefined {
    this.forced = true;
    return this.state === 'Open' ? undefined : this.open(now, 'operator-open');
  }

  clearOverride(): Change | undefined {
    if (!this.forced) return undefined;
    this.forced = false;
    const from = this.state;
    this.state = 'Closed';
    this.failures = 0;
    return from === 'Closed' ? undefined : { from, to: 'Closed', reason: 'operator-clear' };
  }

  private open(now: number, reason: TransitionReason): Change {
    const from = this.state;
    this.state = 'Open';
    this.openedAtMs = now;
    this.successes = 0;
    this.trials = 0;
    return { from, to: 'Open', reason };
  }
}
