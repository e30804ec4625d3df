import type { Logger } from 'pino';
import { RetryBudget } from '../util/retry-budget.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Timers } from '../util/timers.js';
import { entryExpiresAt } from './codec.js';
import type { WarmingSettings } from './config.js';
import type { MemoryStore } from './l1-memory.js';
import type { HotSet } from './sketch.js';
import type { Answer, TieredCache } from './tiered.js';
import type { HeaderFields } from './types.js';

/** What it takes to make a call again: its method, request body (as received) and the headers that matter. */
export interface WarmRequest {
  method: string;
  body: Buffer;
  /** The key headers, grpc-encoding, grpc-accept-encoding, content-type and :authority of the original. */
  headers: HeaderFields;
}

/**
 * Makes a call again for the warmer, through the router's own path (admission at the lowest priority,
 * pick, forward), without reading or writing the cache; resolves with the answer, or undefined when
 * there is none (shed, failed before an answer). The warmer stores an OK answer itself.
 */
export type WarmFetch = (request: WarmRequest) => Promise<Answer | undefined>;

/** Where the pool's routers share their hot sets (RedisStore's publishHot/readHot). */
export interface HotList {
  publishHot(entries: ReadonlyArray<{ key: string; estimate: number }>, ttlMs: number): Promise<void>;
  readHot(n: number): Promise<Array<{ key: string; estimate: number }>>;
  /** Resolves once connected (a router starting reads the list as soon as it can, not before). */
  ready?(timeoutMs: number): Promise<void>;
}

export interface WarmerDeps {
  settings: WarmingSettings;
  hot: HotSet;
  tiered: TieredCache;
  l1: MemoryStore;
  /** A method's TTL, ms (undefined: not cached). */
  ttlFor(method: string): number | undefined;
  /** The shortest TTL of any cached method, ms (sets the tick). */
  shortestTtlMs: number;
  /** Absent: nothing is refreshed from backends; hot keys are still filled from L2/L3. */
  fetch?: WarmFetch;
  hotList?: HotList;
  /** Monotonic ms (the budget). */
  clock: Clock;
  /** Wall-clock ms (entry expiries). */
  wallNow: () => number;
  timers: Timers;
  log?: Logger;
}

/** What the warmer has done (PoolCache.counters → LoadReports; metrics). */
export interface WarmerCounters {
  /** Keys the warmer put into the cache ahead of a client: refreshed from a backend or filled from L2/L3. */
  prefetched: number;
  /** Of those, keys a client was then served from the cache before that entry expired (once each). */
  prefetchHits: number;
  /** Refreshes from a backend (part of prefetched). */
  refreshed: number;
  /** Refreshes not made because the budget was spent. */
  budgetSkips: number;
  /** Refresh calls that gave no OK answer. */
  refreshFailures: number;
}

/** Per hot key: how to call it again (if kept) and when to look at it next. */
interface KeyState {
  request?: WarmRequest;
  /** Wall ms before which the key is left alone (after a refresh attempt, or a fill that found nothing). */
  quietUntil: number;
}

/** Bounds on what the warmer keeps to re-issue calls. */
const MAX_REQUEST_BYTES = 64 * 1024;
const MAX_KEPT_BYTES = 8 * 1024 * 1024;
/** Refreshes and fills at once; a tick's work beyond it waits for the next tick. */
const MAX_CONCURRENT = 8;
/** The size assumed for an entry not fetched yet (only the byte bound's admission test reads it). */
const TYPICAL_ENTRY_BYTES = 1024;
/** How long a starting warmer waits for Redis before giving up on the published hot set. */
const START_WAIT_MS = 5000;
/** A refresh may not start earlier than this fraction of an entry's TTL before it expires. */
const MAX_LEAD_FRACTION = 0.25;

/**
 * Predictive warming (docs/architecture.md, "Cache tiers"), one per PoolCache with warming enabled.
 *
 * Observe: every cacheable lookup (mode normal) is counted in the HotSet (sketch.ts: a decayed
 * count-min sketch whose top-K is the predicted hot set for the next window). For keys in the top-K
 * the request is kept (at most 64 KiB each, 8 MiB in all), so the call can be made again.
 *
 * Every tick, for each hot key (in the top-K with a decayed count ≥ minFrequency), most popular first:
 *  - in L1 and expiring within its lead time → refreshed: the call is made again through the router's
 *    path (`fetch`), and the OK answer written to every tier with a full TTL, so the next client call
 *    after the old expiry is still a hit. Lead time = min(horizon, TTL/4): late enough that a key is
 *    refreshed about once per TTL (a quarter more backend calls than one miss per TTL would cost, and
 *    none of the misses), early enough that a tick (lead/2 at most) and the call fit before expiry;
 *  - not in L1 → filled from L2/L3 when a fresh copy is there (no backend call), else refreshed.
 * A key whose refresh or fill came to nothing is left alone for one lead time.
 *
 * Budget: refreshes draw on a token bucket (the router's RetryBudget) that each observed cacheable call
 * fills by budgetPercent/100, so backend calls made by the warmer are at most budgetPercent % of the
 * cacheable calls this router saw, plus nothing: the bucket starts empty and has no time-based
 * reserve. (A refresh mostly replaces the miss the key would have had after expiry, so actual added
 * load is lower.) Each refresh also passes the pool's concurrency limiter at the lowest priority
 * (sheddable), so it only ever uses the limiter's headroom and is the first thing shed under load.
 * Fills from L2/L3 cost no backend call and are not budgeted (bounded by the top-K).
 *
 * Start: a router with L2 reads the hot set that the pool's routers publish in Redis (`__hot`, each
 * router replacing it every half window with its own top-K), seeds its sketch with those counts and
 * fills L1 from L2 for them, so a new router (or one whose cache spec changed) starts with the fleet's
 * hot set in memory instead of an empty L1. Seeding the sketch lets TinyLFU admission keep those keys.
 * A router whose own sketch is still empty does not publish, so it cannot wipe the fleet's list.
 *
 * Accuracy: prefetched counts every key refreshed or filled; prefetchHits counts, once per prefetch,
 * a prefetched key served to a client from the cache before that entry expired.
 */
export class Warmer {
  private readonly state = new Map<string, KeyState>();
  private keptBytes = 0;
  /** Prefetched key → expiry (wall ms) of the entry prefetched, until its first hit or its expiry. */
  private readonly pending = new Map<string, number>();
  private readonly inflight = new Set<string>();
  private readonly budget: RetryBudget;
  private timer: unknown;
  private publishAtMs = 0;
  private closed = false;
  private readonly counts: WarmerCounters = {
    prefetched: 0,
    prefetchHits: 0,
    refreshed: 0,
    budgetSkips: 0,
    refreshFailures: 0,
  };
  /** Resolves when the start-up fill from the published hot set is done (tests wait on it). */
  readonly started: Promise<void>;

  constructor(private readonly deps: WarmerDeps) {
    const { topK } = deps.settings;
    this.budget = new RetryBudget(deps.settings.budgetPercent, deps.clock, {
      minPerSecond: 0,
      maxBalance: Math.max(10, topK),
    });
    this.started = this.startFill().catch((e: unknown) =>
      deps.log?.warn({ err: errorMessage(e) }, 'cache warm start failed'),
    );
    this.schedule();
  }

  /** Time between ticks: half the shortest lead time, within 50 ms … 1 s. */
  get tickMs(): number {
    return Math.min(1000, Math.max(50, this.leadMs(undefined) / 2));
  }

  counters(): WarmerCounters {
    return { ...this.counts };
  }

  /**
   * A client's lookup of `key` (cache mode normal). `request` is called only when the key is hot and
   * its request not yet kept.
   */
  observe(key: string, request: () => WarmRequest): void {
    this.budget.onRequest();
    const r = this.deps.hot.record(key);
    if (r.evicted !== undefined) this.drop(r.evicted);
    if (!r.hot) return;
    let st = this.state.get(key);
    if (!st) this.state.set(key, (st = { quietUntil: 0 }));
    if (st.request) return;
    const req = request();
    const size = req.body.length + req.method.length;
    if (size > MAX_REQUEST_BYTES || this.keptBytes + size > MAX_KEPT_BYTES) return;
    st.request = req;
    this.keptBytes += size;
  }

  /** A client was served `key` from the cache. */
  served(key: string): void {
    const exp = this.pending.get(key);
    if (exp === undefined) return;
    this.pending.delete(key);
    if (exp > this.deps.wallNow()) this.counts.prefetchHits++;
  }

  /** Forgets the hot set's requests and prefetch bookkeeping (a flush); the sketch keeps counting. */
  reset(): void {
    this.pending.clear();
    for (const st of this.state.values()) st.quietUntil = 0;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.deps.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One round of refreshes and fills (run by the timer; tests call it directly). */
  async tick(): Promise<void> {
    const { settings, hot, l1, wallNow } = this.deps;
    const now = wallNow();
    for (const [k, exp] of this.pending) if (exp <= now) this.pending.delete(k);
    // What is due, most popular first: hot keys expiring within their lead time, or not in L1.
    const due: Array<{ key: string; st: KeyState; lead: number; inL1: boolean }> = [];
    for (const { key, estimate } of hot.hot()) {
      if (estimate < settings.minFrequency) break; // the rest are colder
      if (this.inflight.has(key)) continue;
      const st = this.state.get(key) ?? { quietUntil: 0 };
      if (st.quietUntil > now) continue;
      const lead = this.leadMs(st.request?.method);
      const buf = l1.peek(key);
      const exp = buf && entryExpiresAt(buf);
      if (exp !== undefined && exp - now > lead) continue;
      due.push({ key, st, lead, inL1: exp !== undefined });
    }
    const work: Array<Promise<void>> = [];
    if (this.deps.hotList && now >= this.publishAtMs) {
      this.publishAtMs = now + Math.min(60_000, Math.max(1000, settings.windowMs / 2));
      work.push(this.publish());
    }
    // At most MAX_CONCURRENT calls at once (counting any still running from an earlier tick).
    let next = 0;
    const worker = async () => {
      while (next < due.length && !this.closed) {
        const d = due[next++] as (typeof due)[number];
        if (this.inflight.has(d.key)) continue;
        if (d.inL1) await this.refresh(d.key, d.st, d.lead);
        else await this.fillOrRefresh(d.key, d.st, d.lead);
      }
    };
    const workers = Math.min(due.length, MAX_CONCURRENT - this.inflight.size);
    for (let i = 0; i < workers; i++) work.push(worker());
    await Promise.all(work);
  }

  /** Lead time for a method: min(horizon, TTL/4); for an unknown method, the shortest over methods. */
  private leadMs(method: string | undefined): number {
    const ttl = (method === undefined ? undefined : this.deps.ttlFor(method)) ?? this.deps.shortestTtlMs;
    return Math.min(this.deps.settings.horizonMs, ttl * MAX_LEAD_FRACTION);
  }

  /** Not in L1: from L2/L3 if a fresh copy is there, else from a backend. */
  private async fillOrRefresh(key: string, st: KeyState, lead: number): Promise<void> {
    this.inflight.add(key);
    let found: Awaited<ReturnType<TieredCache['prefill']>>;
    try {
      found = await this.deps.tiered.prefill(key);
    } finally {
      this.inflight.delete(key);
    }
    const now = this.deps.wallNow();
    if (found && this.deps.l1.peek(key)) {
      this.prefetched(key, found.expiresAtMs);
      if (found.expiresAtMs - now > lead) return;
    }
    // With L1 alone, a key L1 would decline now (TinyLFU: its victim is more popular) is not fetched.
    if (this.deps.tiered.stores.length === 1 && !this.deps.l1.wouldAdmit(key, TYPICAL_ENTRY_BYTES)) {
      st.quietUntil = now + lead;
      return;
    }
    const job = this.refresh(key, st, lead);
    if (job) await job;
    else if (!found) st.quietUntil = now + lead;
  }

  /** Makes the call again and stores an OK answer; undefined when it cannot (no request, no budget). */
  private refresh(key: string, st: KeyState, lead: number): Promise<void> | undefined {
    const { fetch, tiered, ttlFor, wallNow } = this.deps;
    const req = st.request;
    const ttl = req && ttlFor(req.method);
    if (!fetch || !req || ttl === undefined) return undefined;
    if (!this.budget.tryWithdraw()) {
      this.counts.budgetSkips++;
      return undefined;
    }
    st.quietUntil = wallNow() + lead;
    this.inflight.add(key);
    const epoch = tiered.epoch;
    return (async () => {
      try {
        const answer = await fetch(req);
        if (answer?.code !== 0) {
          this.counts.refreshFailures++;
          return;
        }
        await tiered.fill(key, answer.response, ttl, epoch);
        if (tiered.epoch !== epoch) return;
        this.counts.refreshed++;
        // Counted as prefetched where a later lookup can find it: L1 (which may have declined it,
        // TinyLFU) or a shared tier below.
        if (this.deps.l1.peek(key) || tiered.stores.length > 1) this.prefetched(key, wallNow() + ttl);
      } catch (e) {
        this.counts.refreshFailures++;
        this.deps.log?.debug({ err: errorMessage(e) }, 'cache refresh failed');
      } finally {
        this.inflight.delete(key);
      }
    })();
  }

  private prefetched(key: string, expiresAtMs: number): void {
    this.counts.prefetched++;
    this.pending.set(key, expiresAtMs);
  }

  private async publish(): Promise<void> {
    const { hot, hotList, settings, log } = this.deps;
    const entries = hot.hot().filter((e) => e.estimate >= settings.minFrequency);
    if (!hotList || entries.length === 0) return;
    try {
      await hotList.publishHot(entries, 2 * settings.windowMs);
    } catch (e) {
      log?.debug({ err: errorMessage(e) }, 'hot set not published');
    }
  }

  /** At start: the fleet's published hot set seeds the sketch, and L1 is filled from L2 for it. */
  private async startFill(): Promise<void> {
    const { hotList, hot, settings, tiered } = this.deps;
    if (!hotList) return;
    await hotList.ready?.(START_WAIT_MS);
    const list = await hotList.readHot(settings.topK);
    for (const e of list) {
      if (!(e.estimate > 0) || !/^[0-9a-f]{16,128}$/.test(e.key)) continue;
      const r = hot.record(e.key, e.estimate);
      if (r.evicted !== undefined) this.drop(r.evicted);
    }
    for (let i = 0; i < list.length && !this.closed; i += MAX_CONCURRENT) {
      await Promise.all(
        list.slice(i, i + MAX_CONCURRENT).map(async (e) => {
          const found = await tiered.prefill(e.key);
          if (found && this.deps.l1.peek(e.key)) this.prefetched(e.key, found.expiresAtMs);
        }),
      );
    }
  }

  private drop(key: string): void {
    const st = this.state.get(key);
    if (!st) return;
    if (st.request) this.keptBytes -= st.request.body.length + st.request.method.length;
    this.state.delete(key);
  }

  private schedule(): void {
    if (this.closed || !this.deps.settings.enabled) return;
    const t = this.deps.timers.setTimeout(() => {
      this.timer = undefined;
      // The next tick does not wait for this one's calls: a slow refresh holds only its own key (and a
      // slot of MAX_CONCURRENT), not every other hot key's.
      this.schedule();
      this.tick().catch((e: unknown) =>
        this.deps.log?.warn({ err: errorMessage(e) }, 'cache warm tick failed'),
      );
    }, this.tickMs);
    (t as { unref?: () => void } | undefined)?.unref?.();
    this.timer = t;
  }
}
