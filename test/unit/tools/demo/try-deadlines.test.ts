import {
  envoyPerTryTimeouts,
  routerTryTimeouts,
  tryDeadlineLine,
} from '../../../../src/tools/demo/try-deadlines.js';

describe("the demo's line on per-try deadlines", () => {
  it("reads Envoy's per-try timeouts of the pool's cluster, not another's", () => {
    const stats = [
      'cluster.sibyl_demo_shop.upstream_rq_per_try_timeout: 7',
      'cluster.sibyl_demo_shopx.upstream_rq_per_try_timeout: 3',
      'cluster.sibyl_router.upstream_rq_per_try_timeout: 1',
    ].join('\n');
    expect(envoyPerTryTimeouts(stats, 'sibyl_demo_shop')).toBe(7);
    expect(envoyPerTryTimeouts('', 'sibyl_demo_shop')).toBe(0);
  });

  it("sums a router's try timeouts over pools, by outcome", () => {
    const text = [
      '# HELP sibyl_router_try_timeouts_total Tries cancelled at their own deadline.',
      '# TYPE sibyl_router_try_timeouts_total counter',
      'sibyl_router_try_timeouts_total{pool="demo/shop",outcome="retried"} 5',
      'sibyl_router_try_timeouts_total{pool="demo/other",outcome="retried"} 2',
      'sibyl_router_try_timeouts_total{pool="demo/shop",outcome="failed"} 1',
      '',
    ].join('\n');
    expect(routerTryTimeouts(text)).toEqual({ retried: 7, failed: 1 });
    expect(routerTryTimeouts('')).toEqual({ retried: 0, failed: 0 });
    expect(tryDeadlineLine({ envoyTimedOut: 4, routersRetried: 7, routersFailed: 1 })).toBe(
      "Per-try deadlines (spec.timeout.predicted) over the demo: Envoy cut 4 tries at their route's per_try_timeout; the routers cut 8 (7 retried on another endpoint, 1 failed with DEADLINE_EXCEEDED).",
    );
  });
});
