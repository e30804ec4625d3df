import type { CallOutcome, Endpoint, PickRequest } from '../balancer/types.js';
import type { PoolRoute } from './table.js';

/**
 * Where the per-call pipeline (DESIGN.md §4: admission → pick → forward → record) takes the parts
 * other modules provide. Each seam has a pass-through default here, so the router works before the
 * breakers (src/breaker), the limiter (src/limit), the cache and hedging exist, and each can be
 * plugged in without touching the forwarding code.
 */

/** A slot granted by admission control; released exactly once with the call's outcome. */
export interface Permit {
  release(outcome: CallOutcome): void;
}

/** Admission control (adaptive concurrency limit, shedding) per pool. */
export interface Admission {
  /** A permit, or undefined to shed the call (the router answers RESOURCE_EXHAUSTED). */
  tryAcquire(pool: PoolRoute, req: PickRequest): Permit | undefined;
}

/** Per-endpoint circuit breakers: which endpoints may take a call, and what became of calls sent. */
export interface EndpointGate {
  admits(pool: PoolRoute, ep: Endpoint): boolean;
  onCallEnded(pool: PoolRoute, ep: Endpoint, outcome: CallOutcome): void;
}

export const admitAll: Admission = {
  tryAcquire: () => ({ release: () => undefined }),
};

export const openGate: EndpointGate = {
  admits: () => true,
  onCallEnded: () => undefined,
};

export interface Seams {
  admission: Admission;
  gate: EndpointGate;
}

export const DEFAULT_SEAMS: Seams = { admission: admitAll, gate: openGate };
