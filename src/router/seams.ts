import type { CallOutcome, PickRequest } from '../balancer/types.js';
import type { Priority } from '../limit/index.js';

/**
 * Where the per-call pipeline (docs/architecture.md, "Router": admission → pick → forward → record) takes the parts other
 * modules own. Each pool has one Admission (its concurrency limiter, src/limit) and one EndpointGate
 * (its circuit breakers, src/breaker); admission.ts and gate.ts adapt those modules to these shapes.
 * The cache will sit between admission and pick, hedging around the attempt.
 */

/**
 * A slot granted by admission control; released exactly once with the call's outcome. `sample` false:
 * the outcome says nothing about the pool's load (the router shed the call itself after admission), so
 * it must not feed the limit.
 */
export interface Permit {
  release(outcome: CallOutcome, sample?: boolean): void;
}

export interface AdmissionRequest extends PickRequest {
  priority: Priority;
  /** Absolute deadline on the router's clock, ms (Infinity when none). */
  deadlineMs: number;
}

/** Admission control per pool (adaptive concurrency limit, priority-aware shedding). */
export interface Admission {
  /** A permit, or undefined to shed the call (the router answers RESOURCE_EXHAUSTED with `reason`). */
  acquire(req: AdmissionRequest): Promise<Permit | { shed: string }>;
}

/** Per-endpoint circuit breakers: which endpoints may take a call, and what became of calls sent. */
export interface EndpointGate {
  /** Whether `id` may be a candidate now (no side effect). */
  allows(id: string): boolean;
  /** The call goes to `id`: takes a half-open trial slot; false if it may not after all. */
  admit(id: string): boolean;
  onCallEnded(id: string, outcome: CallOutcome): void;
  /** The pool's endpoints are now exactly `ids`. */
  sync(ids: Iterable<string>): void;
}

export const admitAll: Admission = {
  acquire: () => Promise.resolve({ release: () => undefined }),
};
