import type { Endpoint } from '../balancer/types.js';
import type { Limiter, Priority, Token } from '../limit/index.js';
import { isSibylError } from '../util/errors.js';

/**
 * Choosing the endpoint for one attempt, after the pool admitted the call (DESIGN.md §4–5: pick →
 * limit → breaker): the balancer picks among the candidates; the chosen endpoint's concurrency limiter
 * must then grant a slot for the call's priority, and its breaker admit it. An endpoint at its limit is
 * set aside and the balancer picks again among the rest, so a full endpoint costs a second pick, not a
 * refusal. Only when every candidate is full does the call wait, on the endpoint the balancer prefers
 * among the full ones, for at most its limiter's short wait (5 ms) and never past the call's deadline;
 * the limiter's queue serves critical calls first and sheds sheddable ones first, so under overload the
 * sheddable calls get RESOURCE_EXHAUSTED and the critical ones go through.
 */
export interface Choosable {
  readonly ep: Endpoint;
  /** The endpoint's limiter; absent when its pool has no concurrency limit. */
  readonly limiter: Limiter | undefined;
}

export interface Chosen<C extends Choosable> {
  st: C;
  /** The endpoint limiter's slot, released when the attempt ends; undefined without a limiter. */
  token: Token | undefined;
}

export interface ChooseContext<C extends Choosable> {
  /** The balancer's pick among a non-empty list. */
  pick(eps: readonly Endpoint[]): Endpoint;
  /** The breaker's last word on the chosen one (takes a half-open slot); false to drop it. */
  admit(st: C): boolean;
  priority: Priority;
  /** Absolute deadline on the limiters' clock, ms (Infinity when none). */
  deadlineMs: number;
}

function indexOfPick(eps: readonly Endpoint[], picked: Endpoint): number {
  const i = eps.indexOf(picked);
  return i < 0 ? 0 : i;
}

/**
 * An endpoint with a slot now, or undefined; never waits. `candidates` is consumed (endpoints tried are
 * removed); those refused only for being at their limit are pushed onto `full` when given.
 */
export function chooseNow<C extends Choosable>(
  candidates: C[],
  ctx: ChooseContext<C>,
  full?: C[],
): Chosen<C> | undefined {
  let eps: Endpoint[] | undefined;
  while (candidates.length > 0) {
    let i = 0;
    if (candidates.length > 1) {
      eps ??= candidates.map((c) => c.ep);
      i = indexOfPick(eps, ctx.pick(eps));
    }
    const st = candidates[i] as C;
    let token: Token | undefined;
    if (st.limiter) {
      token = st.limiter.tryAcquire({ priority: ctx.priority });
      if (!token) {
        full?.push(st);
        candidates.splice(i, 1);
        eps?.splice(i, 1);
        continue;
      }
    }
    if (ctx.admit(st)) return { st, token };
    token?.release('ignore');
    candidates.splice(i, 1);
    eps?.splice(i, 1);
  }
  return undefined;
}

/**
 * An endpoint with a slot, waiting briefly when every candidate is at its limit; `{ shed }` when the
 * wait ended without one (the caller answers RESOURCE_EXHAUSTED); undefined when no candidate can take
 * the call for other reasons (breakers). `candidates` is consumed.
 */
export async function choose<C extends Choosable>(
  candidates: C[],
  ctx: ChooseContext<C>,
): Promise<Chosen<C> | { shed: string } | undefined> {
  const full: C[] = [];
  return chooseNow(candidates, ctx, full) ?? (full.length > 0 ? waitForSlot(full, ctx) : undefined);
}

/** The second half of `choose`: every one of `full` (non-empty) is at its limit; wait on the preferred. */
export async function waitForSlot<C extends Choosable>(
  full: C[],
  ctx: ChooseContext<C>,
): Promise<Chosen<C> | { shed: string } | undefined> {
  const eps = full.map((c) => c.ep);
  const st = full[full.length === 1 ? 0 : indexOfPick(eps, ctx.pick(eps))] as C;
  let token: Token;
  try {
    token = await (st.limiter as Limiter).acquire({ priority: ctx.priority, deadlineMs: ctx.deadlineMs });
  } catch (e) {
    if (isSibylError(e, 'ERR_SHED')) {
      return { shed: `every endpoint is at its concurrency limit; ${st.ep.address}: ${e.message}` };
    }
    throw e;
  }
  if (ctx.admit(st)) return { st, token };
  token.release('ignore');
  return undefined;
}
