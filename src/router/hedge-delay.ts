import type { ResolvedPoolSpec } from '../api/resolve.js';

/**
 * How long a call waits before its hedge (docs/architecture.md, "Router"), or undefined for no hedge:
 * only when the pool hedges and the method is idempotent. A fixed delay is the spec's. "Predicted" is,
 * first, the call's own predicted `hedging.quantile` at its first endpoint (the model's, through the
 * call's dispatch features: calls of one method differ tenfold by payload, so one delay per pool
 * hedges every large call or never a small one; issue 17), else the operator's p90 for the endpoint,
 * else this router's recent `hedging.quantile` of the method (none until it has seen enough calls).
 * Pure.
 *
 * Why `hedging.quantile` defaults to 0.99 (bench/results/hedging-deadlines.md): with a calibrated
 * model a share 1 − q of calls passes its own q-quantile by ordinary variation. Hedged there, such a
 * call rarely gains (the copy needs a whole service time, the try only the rest of its own), and at
 * q = 1 − budget (0.95 for 5%, "The Tail at Scale"'s p95) those hedges take the whole budget, so none
 * is left when a call is slower than predicted: an endpoint slow for that call (a slow disk, a cold
 * index) or a stall, where a copy elsewhere does help. At 0.99 ordinary variation takes 1%, and the
 * rest of a 5% budget goes to the calls the prediction did not foresee. On the simulator (5% budget,
 * 3 seeds) q0.99 beat q0.95 on p99 over all calls on all seven scenarios with payload or method
 * variance: slow-disk 103.4 against 109.2 ms, cold-index 35.7 against 39.3, stw-pauses 44.6 against
 * 47.5, mixed 38.7 against 39.6, and by 0.2–0.5 ms on the other three.
 */
export type HedgeDelaySource = 'fixed' | 'model' | 'operator' | 'observed';

export interface HedgeDelay {
  ms: number;
  source: HedgeDelaySource;
}

export interface HedgeDelayInputs {
  hedging: ResolvedPoolSpec['hedging'];
  idempotent: boolean;
  /** The model's `hedging.quantile` for this call at its first endpoint, ms. */
  predictedMs?: number;
  /** The operator's p90 for the endpoint (hints.predictedP90Ms), ms. */
  operatorP90Ms?: number;
  /** This router's recent `hedging.quantile` of the method, ms. */
  observedMs?: number;
}

const usable = (ms: number | undefined): ms is number => ms !== undefined && Number.isFinite(ms) && ms >= 0;

export function hedgeDelay(i: HedgeDelayInputs): HedgeDelay | undefined {
  const h = i.hedging;
  if (!h.enabled || !i.idempotent) return undefined;
  if (h.delay !== 'Predicted') return { ms: h.delay, source: 'fixed' };
  if (usable(i.predictedMs)) return { ms: i.predictedMs, source: 'model' };
  if (usable(i.operatorP90Ms)) return { ms: i.operatorP90Ms, source: 'operator' };
  if (usable(i.observedMs)) return { ms: i.observedMs, source: 'observed' };
  return undefined;
}
