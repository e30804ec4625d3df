import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the gauges read at scrape time. */
export interface PoolSnapshot {
  pool: string;
  /** The concurrency limit in force, when the pool has one. */
  limit?: number;
  endpoints: Array<{ endpoint: string; sessions: number; breaker: string; limit?: number }>;
}

/** A pool's per-call series with their labels resolved once (prom-client hashes label objects per call). */
export interface PoolSeries {
  inflight: { inc(): void; dec(): void };
  duration: { observe(seconds: number): void };
  /** sibyl_router_requests_total{pool, code} for one code. */
  requests(code: number): { inc(): void };
}

/** The router's Prometheus series (docs/architecture.md, "Observability"), in a registry of its own per router instance. */
export class RouterMetrics {
  private readonly series = new Map<string, PoolSeries>();

  readonly registry = new Registry();
  readonly requests: Counter<'pool' | 'code'>;
  readonly duration: Histogram<'pool'>;
  readonly inflight: Gauge<'pool'>;
  readonly retries: Counter<'pool' | 'reason'>;
  readonly rejected: Counter<'reason'>;
  readonly hedges: Counter<'pool'>;
  readonly tryTimeouts: Counter<'pool' | 'outcome'>;
  readonly hedgeDelay: Histogram<'pool' | 'source'>;
  readonly probes: Counter<'pool'>;
  readonly shed: Histogram<'pool'>;

  /** The per-call series of `pool`, made on first use and kept (pools are few; codes are 17). */
  forPool(pool: string): PoolSeries {
    let s = this.series.get(pool);
    if (!s) {
      const byCode = new Map<number, { inc(): void }>();
      const requests = this.requests;
      s = {
        inflight: this.inflight.labels(pool),
        duration: this.duration.labels(pool),
        requests(code) {
          let c = byCode.get(code);
          if (!c) byCode.set(code, (c = requests.labels(pool, String(code))));
          return c;
        },
      };
      this.series.set(pool, s);
    }
    return s;
  }

  constructor(snapshot: () => PoolSnapshot[], opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'sibyl_router_requests_total',
      help: 'Calls routed, by pool and final gRPC status code (pool "none" when no pool matched).',
      labelNames: ['pool', 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'sibyl_router_request_duration_seconds',
      help: 'Call duration seen by the router, from request headers to final status.',
      labelNames: ['pool'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.inflight = new Gauge({
      name: 'sibyl_router_inflight',
      help: 'Calls in progress.',
      labelNames: ['pool'],
      registers,
    });
    this.retries = new Counter({
      name: 'sibyl_router_retries_total',
      help: 'Attempts sent again to another endpoint, by pool and the status that caused it.',
      labelNames: ['pool', 'reason'],
      registers,
    });
    this.hedges = new Counter({
      name: 'sibyl_router_hedges_total',
      help: 'Second attempts sent because the first had not answered within the hedge delay.',
      labelNames: ['pool'],
      registers,
    });
    this.tryTimeouts = new Counter({
      name: 'sibyl_router_try_timeouts_total',
      help: 'Tries cancelled at their own deadline (spec.timeout.predicted), by pool and what became of the call: retried on another endpoint, or failed (DEADLINE_EXCEEDED to the client: a method not idempotent, response bytes already sent, no attempt or retry budget left).',
      labelNames: ['pool', 'outcome'],
      registers,
    });
    this.hedgeDelay = new Histogram({
      name: 'sibyl_router_hedge_delay_seconds',
      help: "The hedge delay of each hedged-eligible call, by pool and where it came from: fixed (the spec's), model (the call's own predicted hedging.quantile), operator (the endpoint's predicted p90), observed (this router's recent quantile of the method).",
      labelNames: ['pool', 'source'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.probes = new Counter({
      name: 'sibyl_router_probes_total',
      help: "Probes sent: shadow copies of idempotent unary calls to an endpoint the pool's policy wants measured, their answers discarded (not counted in sibyl_router_requests_total).",
      labelNames: ['pool'],
      registers,
    });
    this.shed = new Histogram({
      name: 'sibyl_router_shed_seconds',
      help: 'How long a call shed by a concurrency limit took to be answered RESOURCE_EXHAUSTED, from its request headers (the limiter waits at most a few ms for a slot).',
      labelNames: ['pool'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    this.rejected = new Counter({
      name: 'sibyl_router_rejected_total',
      help: 'Requests refused before routing (not gRPC, malformed, no pool).',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'sibyl_router_upstream_sessions',
      help: 'Open HTTP/2 sessions to each endpoint.',
      labelNames: ['pool', 'endpoint'],
      registers,
      collect() {
        this.reset();
        for (const p of snapshot())
          for (const e of p.endpoints) this.set({ pool: p.pool, endpoint: e.endpoint }, e.sessions);
      },
    });
    new Gauge({
      name: 'sibyl_router_breaker_state',
      help: 'Circuit breaker state per endpoint: 1 for the state it is in (Closed, Open, HalfOpen).',
      labelNames: ['pool', 'endpoint', 'state'],
      registers,
      collect() {
        this.reset();
        for (const p of snapshot())
          for (const e of p.endpoints) this.set({ pool: p.pool, endpoint: e.endpoint, state: e.breaker }, 1);
      },
    });
    new Gauge({
      name: 'sibyl_router_concurrency_limit',
      help: "The pool's adaptive concurrency limit (pools with spec.concurrency only).",
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const p of snapshot()) if (p.limit !== undefined) this.set({ pool: p.pool }, p.limit);
      },
    });
    new Gauge({
      name: 'sibyl_router_endpoint_concurrency_limit',
      help: "Each endpoint's adaptive concurrency limit (pools with spec.concurrency only).",
      labelNames: ['pool', 'endpoint'],
      registers,
      collect() {
        this.reset();
        for (const p of snapshot())
          for (const e of p.endpoints)
            if (e.limit !== undefined) this.set({ pool: p.pool, endpoint: e.endpoint }, e.limit);
      },
    });
  }
}
