import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { beladyHits } from './belady.js';
import type { PoolCacheSpec } from '../../cache/config.js';
import { DEFAULT_TRACE, describeTrace, generateTrace, type TraceSpec } from './cache-trace.js';
import { parseDuration } from '../../util/duration.js';
import { SibylError } from '../../util/errors.js';
import { replayTrace, type ReplayResult } from './cache-replay.js';
import { measureTierLatency, type Percentiles, type TierLatency } from './cache-latency.js';
import { formatEnvoyCache, measureEnvoyCache } from './cache-envoy.js';
import { findTool } from './ghz.js';

const HELP = `usage: sibyl bench cache [flags]

Cache tiers: hit ratios on a seeded synthetic trace (Zipf popularity that drifts, a daily-like cycle
in the rate) at one L1 capacity for plain LRU, sibyl's policy (TinyLFU admission from the decayed
sketch, and warming of hot keys before they expire: the router's own code) and Belady's offline MIN;
then p50/p99 latency of L1, L2 and L3 hits and of misses, measured through real router processes
(a sibyl backend, a Redis, a temp folder for L3) with a grpc-js client on loopback.

  --json                 print {"trace","capacity","hitRatio":{...},"latencyMs":{...}} only
  --capacity N           L1 capacity, entries (default 500)
  --ttl D                every entry's TTL (default 60s)
  --requests N --keys N --zipf-s S --seed N   the trace (defaults 400000, 50000, 0.9, 1)
  --redis-url URL        the Redis for L2 (default: a redis-server from PATH on a free port)
  --latency-calls N      calls measured per tier (default 2000)
  --backend-latency-ms N the backend's service time (default 2)
  --no-latency           hit ratios only
  --sweep N,N,…          other L1 capacities to replay, table only (default 250,1000,2000; "" for none)
  --envoy-path           instead: p50/p99 of an L1 hit with Envoy as the data plane (Envoy programmed
                         by sibyl's ADS → sibyl router), against a miss, Envoy alone and the direct
                         path, side by side (--latency-calls, --backend-latency-ms apply)
  --envoy PATH           Envoy binary (default: $SIBYL_ENVOY, PATH, the sibyl-tools cache)
  --base-id N            the Envoys' --base-id, N and N+1 (default 340)
`;

/** The warming settings sibyl's policy runs with in the replay (its CRD fields). */
function benchWarming(capacity: number, ttlMs: number): NonNullable<PoolCacheSpec['warming']> {
  return {
    enabled: true,
    window: `${ttlMs}ms`,
    horizon: `${ttlMs}ms`,
    topK: capacity,
    minFrequency: 1,
    budgetPercent: 10,
  };
}

export interface CacheBenchResult {
  trace: string;
  capacity: number;
  hitRatio: { LRU: number; sibyl: number; Belady: number };
  latencyMs?: TierLatency;
}

interface Details {
  ttlMs: number;
  /** The client straight to an instant backend (no router): the floor under every tier's figure. */
  direct?: Percentiles;
  /** Hit ratios at other capacities (same trace and TTL). */
  sweep: Array<{ capacity: number; LRU: number; sibyl: number; Belady: number }>;
  /** The same with a minimal node:http2 gRPC client, and the L1 hit through the router with it. */
  minimal?: { direct: Percentiles; l1: Percentiles };
  loadAverage: number;
  lru: ReplayResult;
  sibyl: ReplayResult;
  belady: number;
  warming: NonNullable<PoolCacheSpec['warming']>;
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean;
}

function cacheTargets(r: CacheBenchResult): Target[] {
  const h = r.hitRatio;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const out: Target[] = [
    {
      name: 'hit ratio vs LRU',
      goal: `≥ LRU + 10 points (${pct(h.LRU + 0.1)})`,
      value: pct(h.sibyl),
      met: h.sibyl >= h.LRU + 0.1,
    },
    {
      name: 'hit ratio vs Belady',
      goal: `≥ 0.85 × Belady (${pct(0.85 * h.Belady)})`,
      value: pct(h.sibyl),
      met: h.sibyl >= 0.85 * h.Belady,
    },
  ];
  const lat = r.latencyMs;
  if (lat) {
    for (const [tier, limit] of [
      ['l1', 0.3],
      ['l2', 1.5],
      ['l3', 3],
    ] as const) {
      out.push({
        name: `${tier.toUpperCase()} hit p50 (grpc-js client)`,
        goal: `≤ ${limit} ms`,
        value: `${lat[tier].p50.toFixed(3)} ms`,
        met: lat[tier].p50 <= limit,
      });
    }
  }
  return out;
}

export async function runCacheBench(o: {
  trace: TraceSpec;
  capacity: number;
  ttlMs: number;
  latency?: Parameters<typeof measureTierLatency>[0];
  /** Other capacities to replay too (table only: how the comparison moves with the cache's size). */
  sweep?: number[];
  log: (line: string) => void;
}): Promise<{ result: CacheBenchResult; details: Details }> {
  const trace = generateTrace(o.trace);
  o.log(`▶ trace: ${describeTrace(o.trace)}`);
  o.log(`▶ replaying at L1 capacity ${o.capacity} entries, TTL ${o.ttlMs} ms for every policy`);
  const belady = beladyHits(trace.atMs, trace.key, o.capacity, o.ttlMs).hits;
  const lru = await replayTrace(trace, { capacity: o.capacity, ttlMs: o.ttlMs });
  const warming = benchWarming(o.capacity, o.ttlMs);
  const sibyl = await replayTrace(trace, { capacity: o.capacity, ttlMs: o.ttlMs, warming });
  const n = trace.key.length;
  const result: CacheBenchResult = {
    trace: describeTrace(o.trace),
    capacity: o.capacity,
    hitRatio: { LRU: lru.hits / n, sibyl: sibyl.hits / n, Belady: belady / n },
  };
  const sweep: Details['sweep'] = [];
  for (const capacity of o.sweep ?? []) {
    o.log(`▶ replaying at L1 capacity ${capacity} entries`);
    const b = beladyHits(trace.atMs, trace.key, capacity, o.ttlMs).hits / n;
    const l = (await replayTrace(trace, { capacity, ttlMs: o.ttlMs })).hits / n;
    const w = benchWarming(capacity, o.ttlMs);
    const y = (await replayTrace(trace, { capacity, ttlMs: o.ttlMs, warming: w })).hits / n;
    sweep.push({ capacity, LRU: l, sibyl: y, Belady: b });
  }
  let direct: Percentiles | undefined;
  let minimal: Details['minimal'];
  const loadAverage = loadavg()[0] ?? 0;
  if (o.latency) {
    o.log('▶ latency per tier through the router');
    const l = await measureTierLatency({ ...o.latency, log: o.log });
    result.latencyMs = l.tiers;
    direct = l.direct;
    minimal = l.minimal;
  }
  return {
    result,
    details: { ttlMs: o.ttlMs, lru, sibyl, belady, warming, direct, minimal, loadAverage, sweep },
  };
}

export function formatCacheBench(r: CacheBenchResult, d: Details): string {
  const n = d.lru.calls;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `Trace: ${r.trace}.`,
    `L1 capacity ${r.capacity} entries; every policy stores an entry for ${d.ttlMs} ms. L1 hit ratios (L1 only, no L2/L3).`,
    '',
    '| policy | L1 hit ratio | backend calls | of which warmer refreshes |',
    '|---|---|---|---|',
    `| LRU (demand, lru-cache) | ${pct(r.hitRatio.LRU)} | ${d.lru.misses} | 0 |`,
    `| sibyl (TinyLFU admission + warming) | ${pct(r.hitRatio.sibyl)} | ${d.sibyl.misses + d.sibyl.refreshes} | ${d.sibyl.refreshes} |`,
    `| Belady MIN (offline, demand) | ${pct(r.hitRatio.Belady)} | ${n - d.belady} | 0 |`,
    '',
    `sibyl's warming: ${JSON.stringify(d.warming)}; prefetched ${d.sibyl.prefetched}, of which hit ${d.sibyl.prefetchHits}` +
      ` (accuracy ${d.sibyl.prefetched ? pct(d.sibyl.prefetchHits / d.sibyl.prefetched) : '-'}); L1 declined ${d.sibyl.rejections} new keys.`,
    'Belady is the ceiling for demand caching only: a cache that prefetches (the warmer) can exceed it, at the cost of the refresh calls counted above.',
  ];
  if (d.sweep.length) {
    lines.push(
      '',
      'The same trace at other L1 capacities (the targets are judged at the capacity above):',
      '',
      '| capacity | LRU | sibyl | Belady | sibyl − LRU | sibyl ÷ Belady |',
      '|---|---|---|---|---|---|',
      ...d.sweep.map(
        (x) =>
          `| ${x.capacity} | ${pct(x.LRU)} | ${pct(x.sibyl)} | ${pct(x.Belady)} | ${((x.sibyl - x.LRU) * 100).toFixed(1)} points | ${(x.sibyl / x.Belady).toFixed(3)} |`,
      ),
    );
  }
  const lat = r.latencyMs;
  if (lat) {
    const f = (p: Percentiles) => `${p.p50.toFixed(3)} ms | ${p.p99.toFixed(3)} ms`;
    lines.push(
      '',
      `Latency: one call at a time from a grpc-js client on loopback, ${cpus().length} CPUs, load average ${d.loadAverage.toFixed(1)} at the start.`,
      '',
      '| through the router | p50 | p99 |',
      '|---|---|---|',
      ...(d.direct ? [`| (reference: no router, a backend answering at once) | ${f(d.direct)} |`] : []),
      ...(['l1', 'l2', 'l3', 'miss'] as const).map(
        (t) =>
          `| ${t === 'miss' ? 'miss (backend)' : `${t.toUpperCase()} hit`} | ${lat[t].p50.toFixed(3)} ms | ${lat[t].p99.toFixed(3)} ms |`,
      ),
    );
  }
  const m = d.minimal;
  if (m)
    lines.push(
      '',
      'The same with a minimal HTTP/2 gRPC client (node:http2, hand-encoded request), which leaves out most of grpc-js’s own cost:',
      '',
      '| minimal client | p50 | p99 |',
      '|---|---|---|',
      `| (reference: no router, a backend answering at once) | ${m.direct.p50.toFixed(3)} ms | ${m.direct.p99.toFixed(3)} ms |`,
      `| L1 hit | ${m.l1.p50.toFixed(3)} ms | ${m.l1.p99.toFixed(3)} ms |`,
    );
  lines.push('', '| target | goal | measured | |', '|---|---|---|---|');
  for (const t of cacheTargets(r))
    lines.push(`| ${t.name} | ${t.goal} | ${t.value} | ${t.met ? 'pass' : 'MISS'} |`);
  if (m)
    lines.push(
      `| L1 hit p50, minimal client (not the --json figure) | ≤ 0.3 ms | ${m.l1.p50.toFixed(3)} ms | ${m.l1.p50 <= 0.3 ? 'pass' : 'MISS'} |`,
    );
  return lines.join('\n');
}

function parseSweep(v: string): number[] {
  if (v.trim() === '') return [];
  return v.split(',').map((x) => int(x.trim(), 'sweep', 0, 1));
}

function int(v: string | undefined, flag: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new SibylError('ERR_USAGE', `--${flag} must be an integer ≥ ${min}`);
  return n;
}

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      capacity: { type: 'string' },
      ttl: { type: 'string' },
      requests: { type: 'string' },
      keys: { type: 'string' },
      'zipf-s': { type: 'string' },
      seed: { type: 'string' },
      'redis-url': { type: 'string' },
      'latency-calls': { type: 'string' },
      'backend-latency-ms': { type: 'string' },
      'no-latency': { type: 'boolean', default: false },
      sweep: { type: 'string' },
      'envoy-path': { type: 'boolean', default: false },
      envoy: { type: 'string' },
      'base-id': { type: 'string' },
    },
  });
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  const calls = int(v['latency-calls'], 'latency-calls', 2000, 10);
  const backendLatencyMs = int(v['backend-latency-ms'], 'backend-latency-ms', 2, 0);
  if (v['envoy-path']) return envoyPath(v, calls, backendLatencyMs);
  const zipfS = v['zipf-s'] === undefined ? DEFAULT_TRACE.zipfS : Number(v['zipf-s']);
  if (!(zipfS >= 0)) throw new SibylError('ERR_USAGE', '--zipf-s must be a number ≥ 0');
  const trace: TraceSpec = {
    ...DEFAULT_TRACE,
    requests: int(v.requests, 'requests', DEFAULT_TRACE.requests, 1),
    keys: int(v.keys, 'keys', DEFAULT_TRACE.keys, 1),
    seed: int(v.seed, 'seed', DEFAULT_TRACE.seed, 0),
    zipfS,
  };
  const json = v.json;
  const log = json ? () => undefined : (l: string) => console.log(l);
  const { result, details } = await runCacheBench({
    trace,
    capacity: int(v.capacity, 'capacity', 500, 1),
    ttlMs: parseDuration(v.ttl ?? '60s'),
    latency: v['no-latency']
      ? undefined
      : {
          calls,
          warmup: Math.min(500, calls),
          backendLatencyMs,
          responseBytes: 512,
          redisUrl: v['redis-url'],
        },
    // Not in the --json object, so not run for it.
    sweep: json ? [] : parseSweep(v.sweep ?? '250,1000,2000'),
    log,
  });
  if (json) console.log(JSON.stringify(result));
  else console.log(`\n${formatCacheBench(result, details)}`);
  return 0;
}

/** `--envoy-path`: a hit through Envoy → router against a miss, Envoy alone and direct (cache-envoy.ts). */
async function envoyPath(
  v: { json?: boolean; envoy?: string; 'base-id'?: string },
  calls: number,
  backendLatencyMs: number,
): Promise<number> {
  const envoyBin = findTool('envoy', v.envoy, 'SIBYL_ENVOY');
  if (!envoyBin)
    throw new SibylError('ERR_USAGE', '--envoy-path needs an Envoy: --envoy PATH or $SIBYL_ENVOY');
  const log = v.json ? () => undefined : (l: string) => console.log(l);
  log(`▶ a cache hit with Envoy as the data plane (${calls} calls per path, backend ${backendLatencyMs} ms)`);
  const loadAverage = loadavg()[0] ?? 0;
  const l = await measureEnvoyCache({
    calls,
    warmup: Math.min(500, calls),
    backendLatencyMs,
    responseBytes: 512,
    envoyBin,
    baseId: int(v['base-id'], 'base-id', 340, 0),
    log,
  });
  if (v.json) console.log(JSON.stringify({ envoyPath: l }));
  else
    console.log(
      [
        '',
        `One call at a time from a grpc-js client on loopback, ${cpus().length} CPUs, load average ${loadAverage.toFixed(1)} at the start; Envoy --concurrency 1.`,
        '',
        ...formatEnvoyCache(l),
      ].join('\n'),
    );
  return 0;
}
