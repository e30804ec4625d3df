import type { XdsScaleResult } from './scale-xds.js';

/** `sibyl bench scale`'s result (the xDS part with xDS clients). */
export interface ScaleResult {
  pools: number;
  endpoints: number;
  statusIntervalMs: number;
  convergeMs: number;
  changes: number;
  observed: number;
  delayMs: { p50: number; p99: number; max: number };
  statusWritesPerMinute: number;
  changesPerMinute: number;
  operatorRssMiB: number;
  /** Over the churn: the operator's CPU (user + system) as a share of one core, and its most resident memory. */
  operatorCpuShare: number;
  operatorMaxRssMiB: number;
  /** This process's CPU over the churn (the status watch and the simulated clients share it): near 1, its timings lag. */
  benchCpuShare: number;
  /** The operator's work queue over the churn (sibyl_workqueue_depth, sampled each second): keys waiting to reconcile. */
  queueDepth: { mean: number; max: number };
  xds?: XdsScaleResult;
}

const pct = (share: number) => `${(share * 100).toFixed(0)}%`;

/** The result as the command prints it. */
export function formatScale(r: ScaleResult): string {
  const out: string[] = [];
  out.push(
    `operator scale: ${r.pools} pools × ${r.endpoints} endpoints, status interval ${r.statusIntervalMs} ms`,
  );
  out.push(`  initial convergence        ${(r.convergeMs / 1000).toFixed(1)} s`);
  out.push(
    `  slice change → status      p50 ${r.delayMs.p50.toFixed(0)} ms, p99 ${r.delayMs.p99.toFixed(0)} ms, max ${r.delayMs.max.toFixed(0)} ms (${r.observed} of ${r.changes} changes)`,
  );
  out.push(`  slice changes per minute   ${r.changesPerMinute.toFixed(0)}`);
  out.push(`  status writes per minute   ${r.statusWritesPerMinute.toFixed(0)}`);
  out.push(
    `  operator during the churn  CPU ${pct(r.operatorCpuShare)} of a core, resident ${r.operatorRssMiB.toFixed(0)} MiB (most ${r.operatorMaxRssMiB.toFixed(0)} MiB)`,
  );
  out.push(
    `  operator work queue        mean ${r.queueDepth.mean.toFixed(0)} keys waiting, most ${r.queueDepth.max}`,
  );
  out.push(`  bench process (watch, clients) CPU ${pct(r.benchCpuShare)} of a core`);
  const x = r.xds;
  if (x) {
    out.push(
      `xDS: ${x.clients} simulated proxyless clients, ${x.poolsPerClient} pools each (${x.subscriptions} subscriptions, ${x.subscribersPerPool.min}–${x.subscribersPerPool.max} clients per pool)`,
    );
    out.push(`  initial sync               ${(x.syncMs / 1000).toFixed(1)} s`);
    out.push(`  operator CPU, no changes   ${pct(x.idleCpuShare)} of a core`);
    const met = x.delayMs.p99 <= x.targetP99Ms ? 'met' : 'MISSED';
    out.push(
      `  slice change → all ACKed   p50 ${x.delayMs.p50.toFixed(0)} ms, p99 ${x.delayMs.p99.toFixed(0)} ms, max ${x.delayMs.max.toFixed(0)} ms (${x.observed} of ${x.changes} changes); target p99 ≤ ${x.targetP99Ms} ms ${met}`,
    );
  }

  return out.join('\n');
}
