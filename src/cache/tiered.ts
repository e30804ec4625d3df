import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import { decodeEntry, encodeEntry, entryExpiresAt } from './codec.js';
import type { CacheMode, CacheStore, CachedResponse, TierCounters, TierName } from './types.js';

/** A call's answer as every caller of one key gets it: the status code and the response. */
export interface Answer {
  code: number;
  response: CachedResponse;
}

/** What the leader of a key's flight hands its followers: its answer, the error it threw, or nothing. */
type Outcome = { answer: Answer } | { error: unknown } | undefined;

/** Where a call's answer came from (TieredCache.getOrLoad); `gone`: the caller left while waiting. */
export type Loaded =
  | { from: 'hit'; tier: TierName; answer: Answer }
  | { from: 'shared'; answer: Answer }
  /** `filled`: settles once an OK answer this caller loaded is in every tier. */
  | { from: 'load'; answer: Answer | undefined; filled?: Promise<void> }
  | { from: 'gone' };

const GONE = Symbol('gone');

/**
 * What a caller does next (TieredCache.begin):
 *  - hit: serve `response` (found in `tier`);
 *  - wait: another call is already fetching this key; `outcome` is its result (undefined when that call
 *    ended without a usable answer, e.g. its client went away: then call the backend yourself);
 *  - lead: call the backend, then `flight.complete(answer)`: followers get it, and it is filled if OK;
 *  - bypass: call the backend; nothing is read or written.
 */
export type Begin =
  | { kind: 'hit'; tier: TierName; response: CachedResponse }
  | { kind: 'wait'; outcome: Promise<Outcome> }
  | { kind: 'lead'; flight: Flight }
  | { kind: 'bypass' };

export interface TieredOptions {
  /** Wall-clock ms (epoch): entries carry their expiry across tiers, routers and restarts. */
  wallNow?: () => number;
  log?: Logger;
  /** Told of each tier's lookup result (the metrics). */
  onLookup?: (tier: TierName, result: 'hit' | 'miss' | 'error') => void;
}

/**
 * The tiers in order (L1 → L2 → L3; any subset) with request coalescing.
 *
 * Lookup reads each tier in turn; the first fresh entry wins and is copied into every tier above it
 * (promotion), with the time it has left, so a promoted copy never outlives the original. A fill
 * (after a backend answer with status 0) writes every tier, each capped at its own max TTL. A store
 * failing (ERR_CACHE) counts as an error and reads as a miss: the cache never fails a call.
 *
 * Coalescing (single-flight, as Go's x/sync/singleflight and groupcache): the first caller for a key
 * registers a flight before its first await; callers that arrive while it is open wait for its outcome
 * instead of reading or calling anything themselves. Errors are shared but never stored.
 */
export class TieredCache {
  private readonly flights = new Map<string, Flight>();
  private readonly counts: TierCounters[];
  private readonly wallNow: () => number;
  /** Bumped by clear(): an answer fetched before a flush is not filled after it. */
  private generation = 0;

  constructor(
    readonly stores: readonly CacheStore[],
    private readonly opts: TieredOptions = {},
  ) {
    this.wallNow = opts.wallNow ?? Date.now;
    this.counts = stores.map(() => ({
      hits: 0,
      misses: 0,
      fills: 0,
      errors: 0,
      evictions: 0,
      bytes: 0,
      entries: 0,
    }));
  }

  /** Calls in flight now (one per key). */
  get inflight(): number {
    return this.flights.size;
  }

  /** Starts a call for `key` under `mode`; `ttlMs` is the method's TTL for a fill. See Begin. */
  async begin(key: string, mode: CacheMode, ttlMs: number): Promise<Begin> {
    if (mode === 'bypass') return { kind: 'bypass' };
    // A refresh neither reads nor joins: it asks the backend and overwrites what the tiers hold.
    if (mode === 'refresh') return { kind: 'lead', flight: new Flight(this, key, ttlMs, false) };
    const open = this.flights.get(key);
    if (open) return { kind: 'wait', outcome: open.outcome };
    const flight = new Flight(this, key, ttlMs, true);
    this.flights.set(key, flight);
    const hit = await this.lookup(key);
    if (!hit) return { kind: 'lead', flight };
    flight.settle({ answer: { code: 0, response: hit.response } }, false);
    return { kind: 'hit', tier: hit.tier, response: hit.response };
  }

  /**
   * A call's whole cache step (Go's singleflight.Do, groupcache's getter): a hit; or the answer of the
   * call already loading this key; or this caller's own `load`, whose answer every caller that joined
   * meanwhile gets and which is filled when OK. `load` resolves with the answer to share, or undefined
   * when it has none (its response was not kept): a follower then loads for itself. A thrown error
   * reaches every follower and is never stored. `gone` settles when the caller goes away: a follower
   * stops waiting then.
   */
  async getOrLoad(
    key: string,
    ttlMs: number,
    load: () => Promise<Answer | undefined>,
    mode: CacheMode = 'normal',
    gone?: Promise<unknown>,
  ): Promise<Loaded> {
    const b = await this.begin(key, mode, ttlMs);
    switch (b.kind) {
      case 'hit':
        return { from: 'hit', tier: b.tier, answer: { code: 0, response: b.response } };
      case 'bypass':
        return { from: 'load', answer: await load() };
      case 'wait': {
        const o = await (gone ? Promise.race([b.outcome, gone.then(() => GONE)]) : b.outcome);
        if (typeof o === 'symbol') return { from: 'gone' };
        if (o === undefined) return { from: 'load', answer: await load() };
        if ('error' in o) throw o.error;
        return { from: 'shared', answer: o.answer };
      }
      case 'lead':
        try {
          const answer = await load();
          b.flight.complete(answer);
          return { from: 'load', answer, filled: b.flight.filled };
        } catch (e) {
          b.flight.settle({ error: e }, false);
          throw e;
        }
    }
  }

  /** The first fresh entry from the top, promoted into the tiers above the one holding it. */
  async lookup(key: string): Promise<{ tier: TierName; response: CachedResponse } | undefined> {
    for (let i = 0; i < this.stores.length; i++) {
      const store = this.stores[i] as CacheStore;
      const c = this.counts[i] as TierCounters;
      let buf: Buffer | undefined;
      try {
        buf = await store.get(key);
      } catch (e) {
        this.error(i, 'lookup', e);
        continue;
      }
      if (buf === undefined) {
        c.misses++;
        this.opts.onLookup?.(store.tier, 'miss');
        continue;
      }
      let entry;
      try {
        entry = decodeEntry(buf);
      } catch (e) {
        this.error(i, 'decode', e);
        void store.delete(key).catch(() => undefined);
        continue;
      }
      const left = entry.expiresAtMs - this.wallNow();
      if (left <= 0) {
        c.misses++;
        this.opts.onLookup?.(store.tier, 'miss');
        continue;
      }
      c.hits++;
      this.opts.onLookup?.(store.tier, 'hit');
      for (let j = 0; j < i; j++) void this.put(j, key, buf, left);
      return { tier: store.tier, response: entry.response };
    }
    return undefined;
  }

  /**
   * The warmer's fill from below: the first fresh entry in a tier under the top one is copied into the
   * tiers above it, as a lookup would, but without counting a lookup (no client asked). Resolves with
   * where it was found and when it expires, or undefined (not found, or a tier failed: counted).
   */
  async prefill(key: string): Promise<{ tier: TierName; expiresAtMs: number } | undefined> {
    for (let i = 1; i < this.stores.length; i++) {
      const store = this.stores[i] as CacheStore;
      let buf: Buffer | undefined;
      try {
        buf = await store.get(key);
      } catch (e) {
        this.error(i, 'prefill', e);
        continue;
      }
      const expiresAtMs = buf && entryExpiresAt(buf);
      if (!buf || expiresAtMs === undefined) continue;
      const left = expiresAtMs - this.wallNow();
      if (left <= 0) continue;
      await Promise.all(Array.from({ length: i }, (_, j) => this.put(j, key, buf, left)));
      return { tier: store.tier, expiresAtMs };
    }
    return undefined;
  }

  /**
   * Writes an OK response to every tier for `ttlMs` (each tier capped at its max TTL); `epoch` (from
   * before the answer was fetched) skips the fill when a flush came in between.
   */
  async fill(key: string, response: CachedResponse, ttlMs: number, epoch?: number): Promise<void> {
    if (ttlMs <= 0 || (epoch !== undefined && epoch !== this.generation)) return;
    const buf = encodeEntry({ response, expiresAtMs: this.wallNow() + ttlMs });
    await Promise.all(this.stores.map((_, i) => this.put(i, key, buf, ttlMs)));
  }

  /**
   * Drops every entry of every tier (a flush). A tier that fails (Redis down) counts an error and is
   * logged; the others are still cleared, and this never rejects. Calls in flight when it starts still
   * answer their callers but fill nothing, so no pre-flush answer lands in a flushed tier.
   */
  async clear(): Promise<void> {
    this.generation++;
    await Promise.all(
      this.stores.map(async (store, i) => {
        try {
          await store.clear();
        } catch (e) {
          (this.counts[i] as TierCounters).errors++;
          this.opts.log?.warn({ tier: store.tier, err: errorMessage(e) }, 'cache flush failed');
        }
      }),
    );
  }

  /** @internal the current generation (see clear). */
  get epoch(): number {
    return this.generation;
  }

  /** Each tier's counters, store figures included. */
  counters(): Array<TierCounters & { tier: TierName }> {
    return this.stores.map((s, i) => ({ ...(this.counts[i] as TierCounters), ...s.stats(), tier: s.tier }));
  }

  async close(): Promise<void> {
    await Promise.all(this.stores.map((s) => s.close().catch(() => undefined)));
  }

  /** @internal the flight for `key` is over. */
  forget(key: string, flight: Flight): void {
    if (this.flights.get(key) === flight) this.flights.delete(key);
  }

  private async put(i: number, key: string, buf: Buffer, ttlMs: number): Promise<void> {
    const store = this.stores[i] as CacheStore;
    const ttl = Math.min(ttlMs, store.maxTtlMs ?? Infinity);
    try {
      await store.set(key, buf, ttl);
      (this.counts[i] as TierCounters).fills++;
    } catch (e) {
      this.error(i, 'fill', e);
    }
  }

  private error(i: number, what: string, e: unknown): void {
    const store = this.stores[i] as CacheStore;
    (this.counts[i] as TierCounters).errors++;
    if (what === 'lookup' || what === 'decode') this.opts.onLookup?.(store.tier, 'error');
    this.opts.log?.debug({ tier: store.tier, err: errorMessage(e) }, `cache ${what} failed`);
  }
}

/** One key's backend call in progress; its outcome goes to every caller that joined it. */
export class Flight {
  readonly outcome: Promise<Outcome>;
  private resolve!: (o: Outcome) => void;
  private done = false;
  /** The cache's generation when the flight began: a flush since then means no fill. */
  private readonly epoch: number;
  /** Resolves when the fill after an OK answer has reached every tier (tests wait on it). */
  filled: Promise<void> = Promise.resolve();

  constructor(
    private readonly cache: TieredCache,
    readonly key: string,
    private readonly ttlMs: number,
    private readonly registered: boolean,
  ) {
    this.outcome = new Promise((r) => (this.resolve = r));
    this.epoch = cache.epoch;
  }

  /** The leader's answer: shared with followers, and stored when its code is 0. */
  complete(answer: Answer | undefined): void {
    this.settle(answer && { answer }, answer?.code === 0);
  }

  /** @internal */
  settle(outcome: Outcome, fill: boolean): void {
    if (this.done) return;
    this.done = true;
    if (this.registered) this.cache.forget(this.key, this);
    this.resolve(outcome);
    if (fill && outcome && 'answer' in outcome) {
      this.filled = this.cache.fill(this.key, outcome.answer.response, this.ttlMs, this.epoch);
    }
  }
}
