import { LRUCache } from 'lru-cache';
import type { CacheStore, StoreStats } from './types.js';

export interface MemoryStoreOptions {
  /** Bound on the bytes held (values plus keys). */
  maxBytes: number;
  maxEntries: number;
  /** Longest TTL an entry keeps here, ms (the spec's l1.ttl). */
  maxTtlMs?: number;
  /** Monotonic ms for TTLs (lru-cache's `perf`); performance.now when absent. */
  now?: () => number;
}

/**
 * L1: this router's memory, an LRU bounded by bytes and by entries (lru-cache), each entry with its
 * own TTL. The least recently used entries are evicted first when either bound is reached; an entry
 * larger than maxBytes is not kept at all.
 */
export class MemoryStore implements CacheStore {
  readonly tier = 'l1' as const;
  readonly maxTtlMs: number | undefined;
  private readonly lru: LRUCache<string, Buffer>;
  private evictions = 0;

  constructor(opts: MemoryStoreOptions) {
    this.maxTtlMs = opts.maxTtlMs;
    const now = opts.now;
    this.lru = new LRUCache<string, Buffer>({
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
    return Promise.resolve(this.lru.get(key));
  }

  set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.lru.set(key, value, { ttl: Math.max(1, Math.round(ttlMs)) });
    return Promise.resolve();
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
