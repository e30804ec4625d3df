import { status } from '@grpc/grpc-js';
import { quantile } from '../sim/metrics.js';

/**
 * One measured run of `sibyl bench proxy`, whichever client made it: ghz (its JSON report) or one of
 * the open-loop clients the proxyless targets need (sibyl-xds-client, load-client.ts), which report
 * every call. Both are read into the same figures so rows from either sit in one table.
 */
export interface RunResult {
  target: string;
  /** The fixed rate asked of the client, or undefined for "as fast as it goes". */
  rps?: number;
  callsPerSec: number;
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  errors: number;
  /** Calls cut by ghz closing its connections when the run's time was up. */
  cut: number;
  statuses: Record<string, number>;
  /** With --repeat: every run's figures; the result is the median run. */
  runs?: { callsPerSec: number; p50Ms: number; p99Ms: number }[];
}

/** ghz -O json, the fields read here (latencies in ns). */
export interface GhzReport {
  count: number;
  total: number;
  average: number;
  rps: number;
  latencyDistribution?: { percentage: number; latency: number }[] | null;
  statusCodeDistribution?: Record<string, number> | null;
  errorDistribution?: Record<string, number> | null;
  options?: { skipFirst?: number };
}

/** Calls whose latency is left out of a run's figures (counted in its rate): connections, JIT. */
export const SKIP_FIRST = 100;

const CUT_AT_END = /use of closed network connection|client connection is closing|context canceled/i;

export function summarizeGhz(target: string, r: GhzReport, rps?: number): RunResult {
  const q = (p: number) =>
    ((r.latencyDistribution ?? []).find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  const statuses = { ...(r.statusCodeDistribution ?? {}) };
  let cut = 0;
  for (const [msg, n] of Object.entries(r.errorDistribution ?? {})) if (CUT_AT_END.test(msg)) cut += n;
  const failed = Object.entries(statuses)
    .filter(([code]) => code !== 'OK')
    .reduce((a, [, n]) => a + n, 0);
  const seconds = r.total / 1e9;
  const skipped = r.options?.skipFirst ?? 0;
  return {
    target,
    ...(rps !== undefined ? { rps } : {}),
    callsPerSec: seconds > 0 ? (r.count + skipped) / seconds : 0,
    count: r.count,
    p50Ms: q(50),
    p90Ms: q(90),
    p99Ms: q(99),
    meanMs: r.average / 1e6,
    errors: Math.max(0, failed - cut),
    cut,
    statuses,
  };
}

/**
 * What an open-loop client reports of one run (the protocol of sibyl-xds-client's "load" command,
 * which load-client.ts speaks too): every call's latency in µs and status code, in the order the
 * calls started, and the run's length from the first call's start to the last one's end.
 */
export interface LoadReport {
  sent: number;
  seconds: number;
  latencyUs: number[];
  codes: number[];
}

/**
 * A load client's run read like ghz's: the first SKIP_FIRST calls count in the rate but not in the
 * latencies, and latencies are those of the calls that succeeded (a failure is counted, not timed).
 */
export function summarizeLoad(target: string, r: LoadReport, rps?: number): RunResult {
  const ok: number[] = [];
  const statuses: Record<string, number> = {};
  r.codes.forEach((code, i) => {
    if (i < SKIP_FIRST) return;
    const name = code === 0 ? 'OK' : (status[code] ?? String(code));
    statuses[name] = (statuses[name] ?? 0) + 1;
    if (code === 0) ok.push((r.latencyUs[i] as number) / 1000);
  });
  ok.sort((a, b) => a - b);
  const count = Math.max(0, r.codes.length - SKIP_FIRST);
  return {
    target,
    ...(rps !== undefined ? { rps } : {}),
    callsPerSec: r.seconds > 0 ? r.sent / r.seconds : 0,
    count,
    p50Ms: quantile(ok, 0.5),
    p90Ms: quantile(ok, 0.9),
    p99Ms: quantile(ok, 0.99),
    meanMs: ok.length > 0 ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN,
    errors: count - ok.length,
    cut: 0,
    statuses,
  };
}

/** The median of several runs of one target: by p50 at a fixed rate, by calls/s flat out; with every run. */
export function medianRun(rs: readonly RunResult[], fixedRate: boolean): RunResult {
  const sorted = [...rs].sort((a, b) => (fixedRate ? a.p50Ms - b.p50Ms : b.callsPerSec - a.callsPerSec));
  const median = sorted[(sorted.length - 1) >> 1] as RunResult;
  return rs.length > 1
    ? { ...median, runs: rs.map((r) => ({ callsPerSec: r.callsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms })) }
    : median;
}
