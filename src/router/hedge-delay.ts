import type { ResolvedPoolSpec } from '../api/resolve.js';

/**
 * How long a call waits before its hedge (docs/architecture.md, "Router"), or undefined for no hedge:
 * only when the pool hedges and the method is idempotent. A fixed delay is the spec's. "Predicted" is,
 * first, the call's own predicted `hedging.quantile` at its first endpoint (the model's, through the
 * call's dispatch features: calls of one method differ tenfold by payload, so one delay per pool
 * hedges every large call or never a small one; issue 17), else the operator's p90 for the endpoint,
 * else this router's recent `hedging.quantile` of the method (none until it has seen enough calls).
 * Pure.
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
