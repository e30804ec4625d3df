import { parseExposition, seriesValue } from '../../telemetry/series.js';
import type { DemoRouter } from './dataplanes.js';

/**
 * What the pool's per-try deadlines (spec.timeout.predicted) did over the demo, as the data planes
 * count it themselves: Envoy's cluster counter of tries past their route's per_try_timeout, and the
 * routers' sibyl_router_try_timeouts_total by what became of the call. The grpc-js channel sets no
 * per-try deadline (@grpc/grpc-js-xds reads no per_try_timeout: gRFC A44's retries have none), so it
 * has no count.
 */
export interface TryDeadlineCounts {
  envoyTimedOut: number;
  routersRetried: number;
  routersFailed: number;
}

/** Envoy's admin /stats text line `cluster.NAME.upstream_rq_per_try_timeout: N`; 0 when absent. */
export function envoyPerTryTimeouts(stats: string, cluster: string): number {
  const name = cluster.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^cluster\\.${name}\\.upstream_rq_per_try_timeout: (\\d+)$`, 'm').exec(stats);
  return Number(m?.[1] ?? 0);
}

/** A router's /metrics: its tries cut at their deadline, by outcome, summed over pools. */
export function routerTryTimeouts(exposition: string): { retried: number; failed: number } {
  const families = parseExposition(exposition);
  const count = (outcome: string) =>
    seriesValue(families, { name: 'sibyl_router_try_timeouts_total', labels: { outcome } }) ?? 0;
  return { retried: count('retried'), failed: count('failed') };
}

export function tryDeadlineLine(c: TryDeadlineCounts): string {
  return (
    `Per-try deadlines (spec.timeout.predicted) over the demo: Envoy cut ${c.envoyTimedOut} tries at ` +
    `their route's per_try_timeout; the routers cut ${c.routersRetried + c.routersFailed} ` +
    `(${c.routersRetried} retried on another endpoint, ${c.routersFailed} failed with DEADLINE_EXCEEDED).`
  );
}

/** What the per-try deadlines did, from Envoy's admin stats and each router's /metrics. */
export async function tryDeadlineCounts(
  envoy: { adminGet: (path: string) => Promise<string> },
  routers: readonly DemoRouter[],
): Promise<TryDeadlineCounts> {
  const stats = await envoy.adminGet('/stats?filter=upstream_rq_per_try_timeout');
  const c: TryDeadlineCounts = {
    envoyTimedOut: envoyPerTryTimeouts(stats, 'sibyl_demo_shop'),
    routersRetried: 0,
    routersFailed: 0,
  };
  for (const r of routers) {
    const res = await fetch(`http://${r.metrics}/metrics`);
    if (!res.ok) throw new Error(`router ${r.listen} /metrics answered ${res.status}`);
    const t = routerTryTimeouts(await res.text());
    c.routersRetried += t.retried;
    c.routersFailed += t.failed;
  }
  return c;
}
