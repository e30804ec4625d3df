import type { Logger } from 'pino';
import { TrackedEndpoint } from '../balancer/endpoint.js';
import {
  createBalancer,
  parseBalancerConfig,
  type Balancer,
  type BalancerDeps,
  type CallOutcome,
  type PredictFn,
} from '../balancer/index.js';
import {
  Picker,
  probeBudget,
  type CallHandle,
  type CallObserver,
  type Choosable,
} from '../balancer/picker.js';
import { Status } from '../grpc/status.js';
import type { Limiter } from '../limit/index.js';
import type { Clock, Random } from '../util/clock.js';
import { sameValue } from '../util/equal.js';
import { errorMessage, isSibylError } from '../util/errors.js';
import { RetryBudget } from '../util/retry-budget.js';
import type { Timers } from '../util/timers.js';
import { PoolCache } from '../cache/pool-cache.js';
import type { CacheMetrics } from '../cache/metrics.js';
import type { WarmFetch } from '../cache/warmer.js';
import { createAdmission, createEndpointLimiter } from './admission.js';
import { PREDICTED_TIMEOUT_QUANTILE } from '../api/predicted-timeout.js';
import type { QuantileFn } from '../model/quantiles.js';
import { BreakerGate } from './gate.js';
import { hedgeDelay, type HedgeDelay } from './hedge-delay.js';
import { LatencyTracker } from './latency.js';
import type { Admission } from './seams.js';
import { SessionPool, type SessionPoolOptions } from './session-pool.js';
import type { PoolRoute } from './table.js';
import { tryDeadline, type TryDeadline } from './try-deadline.js';

/**
 * What the router keeps per pool between tables: the picker (balancer and call handles), the endpoints
 * with their in-flight accounting, upstream sessions and concurrency limiters, the circuit breakers, the
 * pool's concurrency limiter, the retry and hedge budgets and the cache. A new table updates it in
 * place (PoolState.update), comparing the typed routes part by part, so sessions, policy and breaker
 * state and budgets survive a table that only changed weights.
 */
export class EndpointState implements Choosable {
  readonly ep: TrackedEndpoint;

  constructor(
    address: string,
    readonly sessions: SessionPool,
    /** This endpoint's concurrency limiter (admission.ts); undefined when the pool has no limit. */
    public limiter: Limiter | undefined,
  ) {
    this.ep = new TrackedEndpoint(address);
  }

  /** The endpoint's concurrency limit now (routers report it as status.endpoints[].concurrencyLimit). */
  get concurrencyLimit(): number | undefined {
    return this.limiter?.limit;
  }
}

/** Sees every attempt of every pool start and end (the control stream's load reports and samples). */
export interface RouterCallObserver {
  started(pool: string, call: CallHandle<EndpointState>): unknown;
  ended(pool: string, call: CallHandle<EndpointState>, context: unknown, outcome: CallOutcome): void;
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
  /** The learned model's per-call quantiles now (none until the operator pushed a model). */
  quantiles?: () => QuantileFn | undefined;
  /** The router's observer now (it may be installed after the pool is made). */
  observer?: () => RouterCallObserver | undefined;
  /** Where pool caches count their lookups (the router's registry). */
  cacheMetrics?: CacheMetrics;
  /** How a pool cache's warmer makes a call again through this router (pipeline.ts internalCall). */
  warmFetch?: WarmFetch;
}

/** A call's predicted latency quantiles at one endpoint, ms (absent: no model, or none asked for). */
export interface CallPredictions {
  /** Its p99, for its try deadline (only when the pool sets spec.timeout.predicted). */
  p99Ms?: number;
  /** Its `hedging.quantile`, for its hedge delay (only for a hedged, idempotent, "Predicted" call). */
  hedgeMs?: number;
}

export class PoolState {
  route: PoolRoute;
  picker: Picker<EndpointState>;
  readonly endpoints = new Map<string, EndpointState>();
  budget: RetryBudget;
  /** Hedges may add at most hedging.maxPercent of requests. */
  hedgeBudget: RetryBudget;
  /** Probes (probe.ts) may add at most PROBE_BUDGET_PERCENT of the calls that could carry one. */
  readonly probeBudget: RetryBudget;
  readonly latencies = new LatencyTracker();
  admission: Admission;
  readonly gate: BreakerGate;
  /** The pool's response cache; undefined when it has none. */
  cache: PoolCache | undefined;
  /** Endpoints whose breaker the operator holds open. */
  private readonly forced = new Set<string>();
  private readonly observer: CallObserver<EndpointState>;

  constructor(
    route: PoolRoute,
    private readonly deps: PoolDeps,
  ) {
    this.route = route;
    const s = route.settings;
    this.gate = new BreakerGate(s.circuitBreaker, {
      ...deps,
      pool: route.name,
      onReadmitted: (id) => this.balancer.onEndpointReadmitted?.(id),
    });
    this.observer = {
      started: (call) => this.deps.observer?.()?.started(this.route.name, call),
      ended: (call, context, outcome) => {
        // the method's recent latencies set hedge delays and try deadlines without a model: clients'
        // calls only, not probes
        if (outcome.code === Status.OK && !call.probe)
          this.latencies.record(call.req.method, outcome.latencyMs);
        this.deps.observer?.()?.ended(this.route.name, call, context, outcome);
      },
    };
    this.picker = this.makePicker(route);
    this.budget = this.retryBudget(route);
    this.hedgeBudget = this.hedgeBudgetOf(route);
    this.probeBudget = probeBudget(deps.clock);
    this.admission = createAdmission(s.concurrency, deps, () => this.endpoints.size);
    this.cache = this.makeCache(route);
    this.syncEndpoints(route, true);
  }

  /** The balancer in force. */
  get balancer(): Balancer {
    return this.picker.balancer;
  }

  /** Applies a new route for this pool: endpoints added and removed, parts replaced where they changed. */
  update(route: PoolRoute): void {
    const prev = this.route;
    const [a, b] = [prev.settings, route.settings];
    this.route = route;
    const policy = (s: typeof a) => [s.balancing.policy, s.balancing.fallbackPolicy, s.balancing.exploration];
    if (!sameValue(policy(a), policy(b))) this.picker = this.makePicker(route);
    if (a.retries.budgetPercent !== b.retries.budgetPercent) this.budget = this.retryBudget(route);
    if (!sameValue(a.hedging, b.hedging)) this.hedgeBudget = this.hedgeBudgetOf(route);
    if (!sameValue(a.circuitBreaker, b.circuitBreaker)) this.gate.configure(b.circuitBreaker);
    if (!sameValue(a.concurrency, b.concurrency)) {
      // A new limit starts afresh; calls holding tokens of the old one release into it harmlessly.
      this.admission = createAdmission(b.concurrency, this.deps, () => this.endpoints.size);
      for (const st of this.endpoints.values()) st.limiter = createEndpointLimiter(b.concurrency, this.deps);
    }
    if (!sameValue(prev.cache, route.cache)) {
      this.closeCache();
      this.cache = this.makeCache(route);
    }
    // A new flush token (the CacheTier was flushed): drop this pool's L1 and L3 entries and its L2
    // keys. The first table a router sees sets its token without flushing (L3 outlives restarts).
    if ((prev.cacheFlushToken ?? '') !== (route.cacheFlushToken ?? '')) this.flushCache();
    this.syncEndpoints(route, false);
  }

  private syncEndpoints(route: PoolRoute, first: boolean): void {
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
      const sessions = new SessionPool(address, this.deps.sessionOptions, {
        ...this.deps,
        events: {
          reconnectFailed: () => this.gate.onConnectFailed(address),
          reachable: () => this.balancer.onEndpointReadmitted?.(address),
        },
      });
      const limiter = createEndpointLimiter(route.settings.concurrency, this.deps);
      this.endpoints.set(address, new EndpointState(address, sessions, limiter));
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

  /** The endpoints a call may try now: not yet tried, connectable, and allowed by their breaker. */
  candidates(tried: ReadonlySet<EndpointState>): EndpointState[] {
    const out: EndpointState[] = [];
    for (const st of this.endpoints.values()) {
      if (!tried.has(st) && st.sessions.connectable && this.gate.allows(st.ep.id)) out.push(st);
    }
    return out;
  }

  /**
   * The call's predicted quantiles at the endpoint it was picked for, from the model and the dispatch
   * features its policy has of that endpoint (Predictive's; other policies keep none, and get no
   * prediction). Take them before the call starts there, as the pick saw the endpoint (the features
   * object is the policy's, reused: read at once). `hedged`: the first try of a call that may hedge.
   */
  predictions(call: CallHandle<EndpointState>, hedged: boolean): CallPredictions {
    const quantile = this.deps.quantiles?.();
    const s = this.route.settings;
    const wantP99 = s.predictedTimeout !== undefined;
    const wantHedge =
      hedged &&
      s.hedging.enabled &&
      s.hedging.delay === 'Predicted' &&
      this.route.idempotentMethods.has(call.req.method);
    if (!quantile || !(wantP99 || wantHedge)) return {};
    const f = call.balancer.dispatchFeatures?.(call.endpoint, call.req);
    if (!f) return {};
    const p99Ms = wantP99 ? quantile(f, PREDICTED_TIMEOUT_QUANTILE) : undefined;
    const hedgeMs = wantHedge ? quantile(f, s.hedging.quantile) : undefined;
    return {
      ...(p99Ms !== undefined ? { p99Ms } : {}),
      ...(hedgeMs !== undefined ? { hedgeMs } : {}),
    };
  }

  /** The hedge delay of a call of `method` first sent to `st` (hedge-delay.ts); undefined: no hedge. */
  hedgeDelay(method: string, st: EndpointState, predictedMs: number | undefined): HedgeDelay | undefined {
    const h = this.route.settings.hedging;
    return hedgeDelay({
      hedging: h,
      idempotent: this.route.idempotentMethods.has(method),
      predictedMs,
      operatorP90Ms: st.ep.hints?.predictedP90Ms,
      observedMs: h.delay === 'Predicted' ? this.latencies.quantile(method, h.quantile) : undefined,
    });
  }

  /** The deadline of a try of `method` (try-deadline.ts); undefined: only the call's own deadline. */
  tryDeadline(
    method: string,
    predictedP99Ms: number | undefined,
    remainingMs: number,
  ): TryDeadline | undefined {
    return tryDeadline({
      spec: this.route.settings.predictedTimeout,
      predictedP99Ms,
      observedP99Ms: this.latencies.quantile(method, PREDICTED_TIMEOUT_QUANTILE),
      remainingMs,
    });
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
    this.closeCache();
  }

  destroy(): void {
    for (const st of this.endpoints.values()) st.sessions.destroy();
    this.closeCache();
  }

  private retryBudget(route: PoolRoute): RetryBudget {
    return new RetryBudget(route.settings.retries.budgetPercent, this.deps.clock);
  }

  private hedgeBudgetOf(route: PoolRoute): RetryBudget {
    const h = route.settings.hedging;
    return new RetryBudget(h.enabled ? h.maxPercent : 0, this.deps.clock, {
      minPerSecond: 1,
      maxBalance: 10,
    });
  }

  private flushCache(): void {
    const cache = this.cache;
    if (!cache) return;
    this.deps.log.info({ pool: this.route.name, token: this.route.cacheFlushToken }, 'cache flushed');
    void cache
      .flush()
      .catch((e: unknown) => this.deps.log.warn({ err: errorMessage(e) }, 'cache flush failed'));
  }

  /** A cache for the route's spec (entries in L2 and L3 outlive a replaced one; L1 starts empty). */
  private makeCache(route: PoolRoute): PoolCache | undefined {
    if (!route.cache) return undefined;
    return new PoolCache(route.name, route.cache, {
      log: this.deps.log,
      metrics: this.deps.cacheMetrics,
      fetch: this.deps.warmFetch,
    });
  }

  private closeCache(): void {
    const old = this.cache;
    this.cache = undefined;
    if (old)
      void old
        .close()
        .catch((e: unknown) => this.deps.log.debug({ err: errorMessage(e) }, 'cache close failed'));
  }

  private makePicker(route: PoolRoute): Picker<EndpointState> {
    return new Picker(this.makeBalancer(route), {
      clock: this.deps.clock,
      gate: this.gate,
      observer: this.observer,
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
    const { policy, fallbackPolicy } = route.settings.balancing;
    const tried: string[] = [];
    for (const name of [policy, fallbackPolicy, 'RoundRobin']) {
      try {
        const config = name === policy && route.balancer ? route.balancer : parseBalancerConfig(name);
        const b = createBalancer(config, deps);
        if (tried.length) {
          this.deps.log.warn(
            { pool: route.name, wanted: policy, using: name },
            `policy ${policy} unavailable; using ${name}`,
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
