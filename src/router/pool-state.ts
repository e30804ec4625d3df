import type { Logger } from 'pino';
import { createBalancer, type Balancer, type BalancerDeps, type Endpoint } from '../balancer/index.js';
import type { Clock, Random } from '../util/clock.js';
import { parseDuration } from '../util/duration.js';
import { errorMessage, isSibylError } from '../util/errors.js';
import type { Limiter } from '../limit/index.js';
import type { Timers } from '../util/timers.js';
import { createAdmission, createEndpointLimiter } from './admission.js';
import { BreakerGate } from './gate.js';
import type { PredictFn } from '../balancer/predictive.js';
import { LatencyTracker } from './latency.js';
import { RetryBudget } from '../util/retry-budget.js';
import type { Admission } from './seams.js';
import { SessionPool, type SessionPoolOptions } from './session-pool.js';
import type { PoolRoute } from './table.js';
import { PoolCache } from '../cache/pool-cache.js';
import type { CacheMetrics } from '../cache/metrics.js';
import type { WarmFetch } from '../cache/warmer.js';

/**
 * What the router keeps per pool between tables: the balancer (policy state), the endpoints with their
 * in-flight accounting, upstream sessions and concurrency limiters, the circuit breakers, the pool's
 * concurrency limiter and the retry budget. A new table updates it in place (PoolState.update), so sessions, balancer and breaker
 * state and budgets survive a table that only changed weights.
 */
export class EndpointState {
  readonly ep: Endpoint;
  /** Start time of each open call, in start order; the first entry is the oldest. */
  private readonly open = new Map<number, number>();
  /** This endpoint's concurrency limiter (admission.ts); undefined when the pool has no limit. */
  limiter: Limiter | undefined;

  constructor(
    address: string,
    readonly sessions: SessionPool,
  ) {
    this.ep = { id: address, address, inflight: 0 };
  }

  /** The endpoint's concurrency limit now (routers report it as status.endpoints[].concurrencyLimit). */
  get concurrencyLimit(): number | undefined {
    return this.limiter?.limit;
  }

  callStarted(id: number, nowMs: number): void {
    this.open.set(id, nowMs);
    this.ep.inflight = this.open.size;
    this.ep.oldestInflightStartMs ??= nowMs;
  }

  callEnded(id: number): void {
    this.open.delete(id);
    this.ep.inflight = this.open.size;
    this.ep.oldestInflightStartMs = this.open.values().next().value;
  }
}

export interface PoolDeps {
  clock: Clock;
  random: Random;
  log: Logger;
  sessionOptions: SessionPoolOptions;
  /** For the limiters' short waits; real timers when absent. */
  timers?: Timers;
  /** The learned model's prediction for the Predictive policy (answers undefined without a model). */
  predict?: PredictFn;
  /** Where pool caches count their lookups (the router's registry). */
  cacheMetrics?: CacheMetrics;
  /** How a pool cache's warmer makes a call again through this router (pipeline.ts internalCall). */
  warmFetch?: WarmFetch;
}

export class PoolState {
  route: PoolRoute;
  balancer!: Balancer;
  readonly endpoints = new Map<string, EndpointState>();
  budget!: RetryBudget;
  /** Hedges may add at most hedging.maxPercent of requests. */
  hedgeBudget!: RetryBudget;
  readonly latencies = new LatencyTracker();
  admission!: Admission;
  gate!: BreakerGate;
  /** The pool's response cache (spec.cache); undefined when it has none. */
  cache: PoolCache | undefined;
  /** Endpoints whose breaker the operator holds open. */
  private readonly forced = new Set<string>();

  constructor(
    route: PoolRoute,
    private readonly deps: PoolDeps,
  ) {
    this.route = route;
    this.update(route, true);
  }

  /** Applies a new route for this pool: endpoints added and removed, policy and budget replaced if changed. */
  update(route: PoolRoute, first = false): void {
    const prev = this.route;
    this.route = route;
    if (first || prev.policy !== route.policy || prev.fallbackPolicy !== route.fallbackPolicy) {
      this.balancer = this.makeBalancer(route);
    }
    if (first || prev.retries.budgetPercent !== route.retries.budgetPercent) {
      this.budget = new RetryBudget(route.retries.budgetPercent, this.deps.clock);
    }
    if (first || !sameJson(prev.spec.hedging, route.spec.hedging)) {
      const pct = route.spec.hedging?.enabled ? (route.spec.hedging.maxPercent ?? 10) : 0;
      this.hedgeBudget = new RetryBudget(pct, this.deps.clock, { minPerSecond: 1, maxBalance: 10 });
    }
    if (first) this.gate = new BreakerGate(route.spec.circuitBreaker, { ...this.deps, pool: route.name });
    else if (!sameJson(prev.spec.circuitBreaker, route.spec.circuitBreaker))
      this.gate.configure(route.spec.circuitBreaker);
    const newLimits = first || !sameJson(prev.spec.concurrency, route.spec.concurrency);
    if (newLimits) {
      // A new limit starts afresh; calls holding tokens of the old one release into it harmlessly.
      this.admission = createAdmission(route.spec.concurrency, this.deps, () => this.endpoints.size);
      for (const st of this.endpoints.values())
        st.limiter = createEndpointLimiter(route.spec.concurrency, this.deps);
    }
    if (first || !sameJson(prev.spec.cache, route.spec.cache)) this.replaceCache(route);
    // A new flush token (the CacheTier was flushed): drop this pool's L1 and L3 entries and its L2
    // keys. The first table a router sees sets its token without flushing (L3 outlives restarts).
    if (!first && (prev.cacheFlushToken ?? '') !== (route.cacheFlushToken ?? '')) this.flushCache();
    const wanted = new Set(route.endpoints.map((e) => e.address));
    for (const [address, st] of this.endpoints) {
      if (wanted.has(address)) continue;
      this.endpoints.delete(address);
      st.sessions.close();
      this.balancer.onEndpointRemoved?.(address);
      this.deps.log.info({ pool: route.name, endpoint: address }, 'endpoint removed');
    }
    for (const address of wanted) {
      if (this.endpoints.has(address)) continue;
      const sessions = new SessionPool(address, this.deps.sessionOptions, this.deps);
      const st = new EndpointState(address, sessions);
      st.limiter = createEndpointLimiter(route.spec.concurrency, this.deps);
      this.endpoints.set(address, st);
      if (!first) this.deps.log.info({ pool: route.name, endpoint: address }, 'endpoint added');
    }
    for (const e of route.endpoints) {
      const st = this.endpoints.get(e.address);
      if (st) st.ep.hints = e.hints;
    }
    this.gate.sync(wanted);
    // Fleet-wide breaker decisions from the operator override this router's own view.
    for (const e of route.endpoints) {
      if (e.forceOpen && !this.forced.has(e.address)) {
        this.forced.add(e.address);
        this.gate.breakers.forceOpen(e.address);
      } else if (!e.forceOpen && this.forced.delete(e.address)) {
        this.gate.breakers.clearOverride(e.address);
      }
    }
    for (const a of this.forced) if (!wanted.has(a)) this.forced.delete(a);
  }

  /**
   * How long to wait before hedging a call to `ep`, or undefined for no hedge: only when the pool
   * hedges and the method is idempotent. "Predicted" is the operator's p90 for the endpoint, else this
   * router's recent p90 for the method (none until it has seen enough calls).
   */
  hedgeDelayMs(method: string, ep: Endpoint): number | undefined {
    const h = this.route.spec.hedging;
    if (!h?.enabled || !this.route.idempotentMethods.has(method)) return undefined;
    if (h.delay && h.delay !== 'Predicted') return parseDuration(h.delay);
    return ep.hints?.predictedP90Ms ?? this.latencies.p90(method);
  }

  /** Why no endpoint can take a call, for the UNAVAILABLE message. */
  unavailableReason(): string {
    let backoff = 0;
    let ejected = 0;
    for (const st of this.endpoints.values()) {
      if (!st.sessions.connectable) backoff++;
      else if (!this.gate.allows(st.ep.id)) ejected++;
    }
    return `${this.endpoints.size} endpoints, ${backoff} failing to connect, ${ejected} ejected by their circuit breaker`;
  }

  /** Closes every upstream session (gracefully: open streams finish). */
  close(): void {
    for (const st of this.endpoints.values()) st.sessions.close();
    this.replaceCache(undefined);
  }

  destroy(): void {
    for (const st of this.endpoints.values()) st.sessions.destroy();
    this.replaceCache(undefined);
  }

  private flushCache(): void {
    const cache = this.cache;
    if (!cache) return;
    this.deps.log.info({ pool: this.route.name, token: this.route.cacheFlushToken }, 'cache flushed');
    void cache
      .flush()
      .catch((e: unknown) => this.deps.log.warn({ err: errorMessage(e) }, 'cache flush failed'));
  }

  /** A new cache for a changed spec (entries in L2 and L3 outlive it; L1 starts empty). */
  private replaceCache(route: PoolRoute | undefined): void {
    const old = this.cache;
    this.cache = undefined;
    if (old)
      void old
        .close()
        .catch((e: unknown) => this.deps.log.debug({ err: errorMessage(e) }, 'cache close failed'));
    const spec = route?.spec.cache;
    if (!route || !spec) return;
    this.cache = new PoolCache(route.name, spec, {
      log: this.deps.log,
      metrics: this.deps.cacheMetrics,
      fetch: this.deps.warmFetch,
    });
  }

  /**
   * The configured policy if this build has it, else the pool's fallback, else RoundRobin: a table
   * naming a policy the router lacks still routes (static stability), and says so in the log.
   */
  private makeBalancer(route: PoolRoute): Balancer {
    const deps: BalancerDeps = {
      clock: this.deps.clock,
      random: this.deps.random,
      ...(this.deps.predict ? { predict: this.deps.predict } : {}),
    };
    const options: Record<string, unknown> = {};
    if (route.spec.balancing?.exploration !== undefined)
      options.exploration = route.spec.balancing.exploration;
    const tried: string[] = [];
    for (const name of [route.policy, route.fallbackPolicy, 'RoundRobin']) {
      try {
        const b = createBalancer(name, deps, name === 'Predictive' ? options : undefined);
        if (tried.length) {
          this.deps.log.warn(
            { pool: route.name, wanted: route.policy, using: name },
            `policy ${route.policy} unavailable; using ${name}`,
          );
        }
        return b;
      } catch (e) {
        if (!isSibylError(e, 'ERR_CONFIG_INVALID')) throw e;
        tried.push(`${name}: ${errorMessage(e)}`);
      }
    }
    throw new Error(`no balancing policy available for pool ${route.name}: ${tried.join('; ')}`);
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
