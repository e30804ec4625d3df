import type { CacheCounters } from '../../../src/control/messages.js';
import { CacheView, summary } from '../../../src/operator/cache-view.js';

const c = (tier: string, cache: string, hits: number, misses: number, extra: Partial<CacheCounters> = {}) =>
  ({
    tier,
    cache,
    hits,
    misses,
    fills: 0,
    evictions: 0,
    bytes: 0,
    entries: 0,
    prefetched: 0,
    prefetchHits: 0,
    ...extra,
  }) satisfies CacheCounters;

/** One router's cumulative counters: `l1` lookups of which l1Hits hit, and l2Hits of L1's misses hit in L2. */
const report = (
  pool: string,
  l1Hits: number,
  l1Misses: number,
  l2Hits: number,
  extra: Partial<CacheCounters> = {},
) => [c('l1', pool, l1Hits, l1Misses, extra), c('l2', pool, l2Hits, l1Misses - l2Hits)];

describe('CacheView', () => {
  it('a first report is a baseline; ratios come from the increase since, shares of all lookups', () => {
    const v = new CacheView({ windowMs: 60_000 });
    v.ingest('r1', report('ns/a', 1000, 1000, 500), 0);
    expect(v.figures(['ns/a'], 0)).toMatchObject({ routers: 1 });
    expect(v.figures(['ns/a'], 0)?.hitRatio).toBeUndefined();
    // Next interval: 100 lookups, 70 L1 hits, 20 of the 30 misses hit in L2.
    v.ingest('r1', report('ns/a', 1070, 1030, 520), 1000);
    const f = v.figures(['ns/a'], 1000);
    expect(f?.hitRatio).toEqual({ l1: 0.7, l2: 0.2, l3: 0, overall: 0.9 });
    expect(f?.hitRatioSummary).toBe('90% (L1 70%, L2 20%)');
  });

  it("a cache new on a router already reporting counts in full (a new tier); a router's first report does not", () => {
    const v = new CacheView();
    v.ingest('r1', [], 0);
    v.ingest('r2', report('ns/a', 50, 50, 0), 0); // r2's first report: a baseline
    v.ingest('r1', report('ns/a', 8, 2, 1), 500); // r1 known: its new cache's lookups count
    const f = v.figures(['ns/a'], 500);
    expect(f?.routers).toBe(2);
    expect(f?.hitRatio).toEqual({ l1: 0.8, l2: 0.1, l3: 0, overall: 0.9 });
  });

  it('sums routers, and treats a counter that went down as a restart (the new value is the increase)', () => {
    const v = new CacheView();
    v.ingest('r1', report('ns/a', 0, 0, 0), 0);
    v.ingest('r2', report('ns/a', 500, 500, 0), 0);
    v.ingest('r1', report('ns/a', 10, 10, 0), 1000); // 20 lookups, 10 hits
    v.ingest('r2', report('ns/a', 3, 7, 7), 1000); // restarted: 10 lookups, 3 L1 hits, 7 L2 hits
    const f = v.figures(['ns/a'], 1000);
    expect(f?.routers).toBe(2);
    expect(f?.hitRatio?.l1).toBeCloseTo(13 / 30, 4);
    expect(f?.hitRatio?.l2).toBeCloseTo(7 / 30, 4);
    expect(f?.hitRatio?.overall).toBeCloseTo(20 / 30, 4);
  });

  it('forgets lookups older than the window and routers not heard from', () => {
    const v = new CacheView({ windowMs: 10_000, staleMs: 5_000 });
    v.ingest('r1', report('ns/a', 0, 0, 0), 0);
    v.ingest('r1', report('ns/a', 10, 0, 0), 1000); // all hits
    v.ingest('r1', report('ns/a', 10, 10, 0), 12_000); // then all misses
    expect(v.figures(['ns/a'], 12_000)?.hitRatio?.overall).toBe(0);
    expect(v.figures(['ns/a'], 18_000)).toBeUndefined();
  });

  it('keeps pools apart; L1 and L3 entries and bytes sum over routers, L2 is not counted', () => {
    const v = new CacheView();
    v.ingest(
      'r1',
      [c('l1', 'ns/a', 0, 0, { entries: 5, bytes: 50 }), c('l2', 'ns/a', 0, 0, { entries: 99 })],
      0,
    );
    v.ingest(
      'r2',
      [c('l1', 'ns/a', 0, 0, { entries: 7, bytes: 70 }), c('l3', 'ns/a', 0, 0, { entries: 1, bytes: 9 })],
      0,
    );
    v.ingest('r1', [c('l1', 'ns/b', 0, 0, { entries: 1000 })], 0);
    expect(v.figures(['ns/a'], 0)).toMatchObject({ entries: 13, bytes: 129, routers: 2 });
    expect(v.figures(['ns/a', 'ns/b'], 0)).toMatchObject({ entries: 1013 });
    expect(v.figures(['ns/c'], 0)).toBeUndefined();
  });

  it('prefetch accuracy is prefetch hits over keys prefetched, summed over routers', () => {
    const v = new CacheView();
    v.ingest('r1', [c('l1', 'ns/a', 0, 0, { prefetched: 40, prefetchHits: 30 })], 0);
    v.ingest('r2', [c('l1', 'ns/a', 0, 0, { prefetched: 60, prefetchHits: 20 })], 0);
    const f = v.figures(['ns/a'], 0);
    expect(f?.warmedKeys).toBe(100);
    expect(f?.prefetchAccuracy).toBe(0.5);
    v.ingest('r3', [c('l1', 'ns/b', 0, 0)], 0);
    expect(v.figures(['ns/b'], 0)?.prefetchAccuracy).toBeUndefined();
  });
});

describe('summary', () => {
  it('lists the tiers that answered, and fits the status field (32 characters) at its longest', () => {
    expect(summary({ l1: 0.71, l2: 0.16, l3: 0, overall: 0.87 })).toBe('87% (L1 71%, L2 16%)');
    expect(summary({ l1: 0, l2: 0, l3: 0, overall: 0 })).toBe('0%');
    expect(summary({ l1: 1, l2: 1, l3: 1, overall: 1 }).length).toBeLessThanOrEqual(32);
  });
});
