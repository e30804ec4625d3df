import { pino } from 'pino';
import type { PoolCacheSpec } from '../../cache/config.js';
import { PoolCache } from '../../cache/pool-cache.js';
import type { Answer } from '../../cache/tiered.js';
import type { Trace } from './cache-trace.js';
import type { Timers } from '../../util/timers.js';

/**
 * Replays a trace through the router's own cache code (PoolCache: the same MemoryStore, sketch, TinyLFU
 * admission and Warmer the router runs) on a virtual clock, with L1 only, each call answered at once by
 * a virtual backend. Without `warming` the pool cache is plain LRU (lru-cache, demand filled), as a pool
 * without a warming block has; with it, it is sibyl's policy. The warmer's ticks are driven by the
 * replay at the warmer's own tick interval (timers that never fire are injected instead of real ones).
 */
export interface ReplayOptions {
  /** L1 capacity, entries (the byte bound is set out of reach). */
  capacity: number;
  /** TTL of every entry, ms. */
  ttlMs: number;
  warming?: PoolCacheSpec['warming'];
}

export interface ReplayResult {
  calls: number;
  /** Calls answered from L1. */
  hits: number;
  /** Calls that went to the backend. */
  misses: number;
  /** Backend calls the warmer made (refreshes). */
  refreshes: number;
  prefetched: number;
  prefetchHits: number;
  /** New keys L1 declined (TinyLFU). */
  rejections: number;
}

const METHOD = '/sibyl.bench.Trace/Get';
const HEADERS = { 'content-type': 'application/grpc' };
/** Starts well away from 0 (lru-cache reads a start time of 0 as "no TTL"). */
const T0 = 1_000_000;
const WALL0 = 1_700_000_000_000;
const never: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined };

export async function replayTrace(trace: Trace, opts: ReplayOptions): Promise<ReplayResult> {
  let now = T0;
  let refreshes = 0;
  const answer = (body: Buffer): Answer => ({
    code: 0,
    response: { headers: HEADERS, body, trailers: { 'grpc-status': '0' } },
  });
  const pc = new PoolCache(
    'bench',
    {
      methods: [{ method: METHOD, ttl: `${opts.ttlMs}ms` }],
      l1: { maxEntries: opts.capacity, maxBytes: opts.capacity * 4096 + 65536 },
      ...(opts.warming ? { warming: opts.warming } : {}),
    },
    {
      log: pino({ level: 'silent' }),
      now: () => now,
      wallNow: () => WALL0 + now - T0,
      timers: never,
      fetch: (req) => {
        refreshes++;
        return Promise.resolve(answer(req.body));
      },
    },
  );
  const bodies = new Map<number, Buffer>();
  const body = (k: number) => {
    let b = bodies.get(k);
    if (!b) bodies.set(k, (b = Buffer.from(`key-${k}`)));
    return b;
  };
  const warmer = pc.warmer;
  const tickMs = warmer?.tickMs ?? Infinity;
  let nextTick = T0 + tickMs;
  let hits = 0;
  const n = trace.key.length;
  try {
    for (let i = 0; i < n; i++) {
      const t = T0 + (trace.atMs[i] as number);
      while (warmer && nextTick <= t) {
        now = nextTick;
        await warmer.tick();
        nextTick += tickMs;
      }
      now = t;
      const b = body(trace.key[i] as number);
      const r = await pc.getOrLoad(METHOD, b, HEADERS, 'normal', opts.ttlMs, () =>
        Promise.resolve(answer(b)),
      );
      if (r.from === 'hit') {
        hits++;
        continue;
      }
      if (r.from !== 'load') throw new Error(`replay: unexpected cache step ${r.from}`);
      await r.filled;
    }
    const w = warmer?.counters();
    return {
      calls: n,
      hits,
      misses: n - hits,
      refreshes,
      prefetched: w?.prefetched ?? 0,
      prefetchHits: w?.prefetchHits ?? 0,
      rejections: pc.l1.rejections,
    };
  } finally {
    await pc.close();
  }
}
