import { LRUCache } from 'lru-cache';
import type { CacheStore, StoreStats } from './types.js';

/**
 * Entries from the LRU end that admission looks at; the least often asked for of them is the victim
 * (sampled eviction, as Redis approximates LRU and LFU by sampling maxmemory-samples keys). On the
 * benchmark's trace (`sibyl bench cache`), 16 gained about a point of hit ratio over the LRU entry
 * alone (1); more gained next to nothing.
 */
const SAMPLE = 16;

export interface MemoryStoreOptions {
  /** Bound on the bytes held (values plus keys). */
  maxBytes: number;
  maxEntries: number;
  /** Longest TTL an entry keeps here, ms (the spec's l1.ttl). */
  maxTtlMs?: number;
  /** Monotonic ms for TTLs (lru-cache's `perf`); performance.now when absent. */
  now?: () => number;
  /**
   * TinyLFU admission: how often a key has been asked for lately (sketch.ts's decayed estimate). When
   * given, a new key that would push an entry out is kept only if it is asked for more often than the
   * entry it would push out (the least recently used one); see set().
   */
  frequency?: (key: string) => number;
}

/**
 * L1: this router's memory, an LRU bounded by bytes and by entries (lru-cache), each entry with its
 * own TTL. The least recently used entries are evicted first when either bound is reached; an entry
 * larger than maxBytes is not kept at all.
 *
 * With `frequency` (a pool with warming), admission is TinyLFU's (Einziger, Friedman & Manes, "TinyLFU:
 * a highly efficient cache admission policy", ACM ToS 13(4), 2017): when a new key would evict, it is
 * admitted only if its recent frequency beats the victim's, so a one-off key cannot push out a popular
 * one. The victim is the least frequent of the SAMPLE least recently used entries (an expired one
 * first), not simply the least recently used, so a popular entry that was not read lately is not the
 * one offered up.
 */
export class MemoryStore implements CacheStore {
  readonly tier = 'l1' as const;
  readonly maxTtlMs: number | undefined;
  private readonly lru: LRUCache<string, Buffer>;
  private evictions = 0;
  /** New keys not admitted (TinyLFU said the victim is more popular). */
  rejections = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly frequency: ((key: string) => number) | undefined;

  constructor(opts: MemoryStoreOptions) {
    this.maxTtlMs = opts.maxTtlMs;
    this.maxEntries = opts.maxEntries;
    this.maxBytes = opts.maxBytes;
    this.frequency = opts.frequency;
    const now = opts.now;
    this.lru = new LRUCache<string, Buffer>({
      // Iteration (the admission's victim lookup) sees expired entries too; reads never serve them.
      allowStale: true,
      max: opts.maxEntries,
      maxSize: opts.maxBytes,
      sizeCalculation: (v, k) => Math.max(1, v.length + k.length),
      ttlAutopurge: false,
      // An injected clock is read on every check (lru-cache otherwise caches `now` for 1 ms on a timer).
      ...(now ? { perf: { now }, ttlResolution: 0 } : {}),
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.evictions++;
      },
    });
  }

  get(key: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.lru.get(key, { allowStale: false }));
  }

  /** The entry without touching its recency (the warmer reads expiries with it); undefined when stale. */
  peek(key: string): Buffer | undefined {
    return this.lru.peek(key, { allowStale: false });
  }

  set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    if (this.frequency && !this.admit(key, value)) {
      this.rejections++;
      return Promise.resolve();
    }
    this.lru.set(key, value, { ttl: Math.max(1, Math.round(ttlMs)) });
    return Promise.resolve();
  }

  /**
   * Whether a set of `key` (about `bytes` long) would be kept now: always without admission; with it,
   * as set() would decide. The warmer asks before fetching a key only L1 would hold.
   */
  wouldAdmit(key: string, bytes: number): boolean {
    return !this.frequency || this.admitSize(key, bytes);
  }

  /** TinyLFU: may `key` come in? Yes unless it would evict a live entry asked for at least as often. */
  private admit(key: string, value: Buffer): boolean {
    return this.admitSize(key, value.length);
  }

  private admitSize(key: string, bytes: number): boolean {
    if (this.lru.has(key)) return true; // an update, not an admission
    const size = Math.max(1, bytes + key.length);
    const full = this.lru.size >= this.maxEntries || this.lru.calculatedSize + size > this.maxBytes;
    if (!full) return true;
    // The victim: the least often asked for of the SAMPLE least recently used entries (an expired one
    // at once). It is removed here when the newcomer wins, so lru-cache's own eviction (the LRU one)
    // does not take a different entry.
    const f = this.frequency as (key: string) => number;
    let victim: string | undefined;
    let victimF = Infinity;
    let n = 0;
    for (const k of this.lru.rkeys()) {
      if (this.lru.getRemainingTTL(k) <= 0) {
        victim = k;
        victimF = -1;
        break;
      }
      const fk = f(k);
      if (fk < victimF) {
        victim = k;
        victimF = fk;
      }
      if (++n >= SAMPLE) break;
    }
    if (victim === undefined) return true;
    if (victimF >= 0 && f(key) <= victimF) return false;
    if (victim !== this.lru.rkeys().next().value) {
      this.lru.delete(victim);
      this.evictions++;
    }
    return true;
  }

  delete(key: string): Promise<void> {
    this.lru.delete(key);
    return Promise.resolve();
  }

  clear(): Promise<void> {
    this.lru.clear();
    return Promise.resolve();
  }

  stats(): StoreStats {
    return { evictions: this.evictions, bytes: this.lru.calculatedSize, entries: this.lru.size };
  }

  close(): Promise<void> {
    this.lru.clear();
    return Promise.resolve();
  }
}
