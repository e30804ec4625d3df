import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { CircuitBreaker, type BreakerConfig } from '../breaker/index.js';
import { errorMessage } from '../util/errors.js';
import { unlinkPrefix } from './redis-keys.js';
import { cacheError, type CacheStore, type StoreStats } from './types.js';

export type RedisMode = 'Standalone' | 'Sentinel' | 'Cluster';

export interface RedisStoreOptions {
  /** redis:// or rediss:// (user and password in the URL); for Sentinel, a sentinel's address. */
  url: string;
  mode?: RedisMode;
  /** Sentinel mode: the master group name. */
  sentinelName?: string;
  /** Put before every key (one CacheTier's keys apart from another's). */
  keyPrefix: string;
  /** A command not answered within this is a failure (a miss to the caller). Default 50 ms. */
  timeoutMs?: number;
  /** Longest TTL an entry keeps here, ms (the spec's l2.ttl). */
  maxTtlMs?: number;
  /** The breaker in front of Redis; defaults: 3 failures open it for 1 s, then one trial command. */
  breaker?: Partial<BreakerConfig>;
  /** Monotonic ms for the breaker. */
  now?: () => number;
  log?: Logger;
}

const DEFAULT_BREAKER: BreakerConfig = {
  failureThreshold: 3,
  recoveryTimeoutMs: 1000,
  halfOpenMaxCalls: 1,
  maxEjectionPercent: 100,
};

/**
 * L2: Redis through ioredis (standalone, Sentinel or Cluster), shared by every router of a pool.
 * Values are binary (getBuffer; SET … PX ttl); concurrent commands go out in one write (ioredis
 * auto-pipelining). A slow or dead Redis must never fail or hold up a call, so:
 *  - no offline queue: while disconnected a command fails at once instead of waiting for a reconnect;
 *  - every command has `timeoutMs` (ioredis commandTimeout);
 *  - a circuit breaker (src/breaker's CircuitBreaker) stops sending after a few failures, and lets one
 *    trial command through after the recovery timeout, so L2 comes back on its own once Redis does.
 * ioredis itself keeps reconnecting in the background (backoff up to 500 ms).
 * Bytes and entries are reported as 0: a router cannot see what the shared Redis holds (the operator
 * reads that from Redis itself).
 */
export class RedisStore implements CacheStore {
  readonly tier = 'l2' as const;
  readonly maxTtlMs: number | undefined;
  readonly client: Redis | Cluster;
  private readonly breaker = new CircuitBreaker('redis');
  private readonly breakerConfig: BreakerConfig;
  private readonly now: () => number;
  private lastErrorLogMs = -Infinity;

  constructor(private readonly opts: RedisStoreOptions) {
    this.maxTtlMs = opts.maxTtlMs;
    this.breakerConfig = { ...DEFAULT_BREAKER, ...opts.breaker };
    this.now = opts.now ?? (() => performance.now());
    this.client = redisClient(opts);
    this.client.on('error', (e: Error) => this.logError('redis connection error', e));
  }

  /** Resolves once connected (for tests and warm starts); rejects after `timeoutMs`. */
  ready(timeoutMs = 5000): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(cacheError(`redis not ready in ${timeoutMs}ms`)), timeoutMs);
      this.client.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Closed, Open or HalfOpen. */
  get breakerState(): string {
    this.breaker.refresh(this.now(), this.breakerConfig);
    return this.breaker.state;
  }

  get(key: string): Promise<Buffer | undefined> {
    return this.guard(
      'get',
      async () => (await this.client.getBuffer(this.opts.keyPrefix + key)) ?? undefined,
    );
  }

  set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    const ttl = Math.max(1, Math.round(ttlMs));
    return this.guard('set', async () => {
      await this.client.set(this.opts.keyPrefix + key, value, 'PX', ttl);
    });
  }

  delete(key: string): Promise<void> {
    return this.guard('delete', async () => {
      await this.client.del(this.opts.keyPrefix + key);
    });
  }

  /**
   * Deletes every key under this store's prefix: SCAN … MATCH prefix* in batches, each batch UNLINKed
   * (non-blocking delete on the server), on every master in Cluster mode. Keys written while it runs
   * may survive it. One failure anywhere rejects (ERR_CACHE) and counts against the breaker.
   */
  clear(): Promise<void> {
    return this.guard('clear', async () => {
      await unlinkPrefix(this.client, this.opts.keyPrefix, { batch: CLEAR_BATCH });
    });
  }

  /**
   * Publishes a router's hot set for the pool (the warmer's top-K, most popular first) as the sorted
   * set `<prefix>__hot` (member = cache key, score = decayed count), replacing the last one published,
   * expiring after `ttlMs` unless published again. A router starting cold reads it (readHot). One key per
   * pool, so Cluster mode needs nothing more.
   */
  publishHot(entries: ReadonlyArray<{ key: string; estimate: number }>, ttlMs: number): Promise<void> {
    const name = this.opts.keyPrefix + HOT_SUFFIX;
    return this.guard('publish hot set', async () => {
      const args = entries.flatMap((e) => [e.estimate, e.key]);
      const m = this.client.multi().del(name);
      if (args.length) m.zadd(name, ...args).pexpire(name, Math.max(1, Math.round(ttlMs)));
      const replies = await m.exec();
      const failed = replies?.find(([err]) => err);
      if (!replies || failed) throw failed?.[0] ?? new Error('transaction aborted');
    });
  }

  /** The hot set last published by any router of the pool, most popular first, at most `n`. */
  readHot(n: number): Promise<Array<{ key: string; estimate: number }>> {
    const name = this.opts.keyPrefix + HOT_SUFFIX;
    return this.guard('read hot set', async () => {
      const flat = await this.client.zrevrange(name, 0, Math.max(0, n - 1), 'WITHSCORES');
      const out: Array<{ key: string; estimate: number }> = [];
      for (let i = 0; i + 1 < flat.length; i += 2)
        out.push({ key: flat[i] as string, estimate: Number(flat[i + 1]) });
      return out;
    });
  }

  stats(): StoreStats {
    return { evictions: 0, bytes: 0, entries: 0 };
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /** Runs `op` behind the breaker; every failure (refused, timed out, errored) is an ERR_CACHE. */
  private async guard<T>(what: string, op: () => Promise<T>): Promise<T> {
    const cfg = this.breakerConfig;
    this.breaker.refresh(this.now(), cfg);
    if (!this.breaker.admit(cfg)) throw cacheError(`redis ${what} skipped: breaker ${this.breaker.state}`);
    let result: T;
    try {
      result = await op();
    } catch (e) {
      const change = this.breaker.onResult(false, this.now(), cfg, true);
      if (change && change !== 'would-open')
        this.opts.log?.warn({ breaker: change.to }, 'redis cache breaker');
      throw cacheError(`redis ${what} failed: ${errorMessage(e)}`, e);
    }
    const change = this.breaker.onResult(true, this.now(), cfg, true);
    if (change && change !== 'would-open') this.opts.log?.info({ breaker: change.to }, 'redis cache breaker');
    return result;
  }

  private logError(msg: string, e: Error): void {
    const t = this.now();
    if (t - this.lastErrorLogMs < 10_000) return;
    this.lastErrorLogMs = t;
    this.opts.log?.warn({ err: e.message }, msg);
  }
}

/** The hot set's key under a pool's prefix (not hex, so never a cache entry's key). */
export const HOT_SUFFIX = '__hot';

/** Keys SCAN looks at per step of a clear (a hint to Redis; each step's keys are UNLINKed at once). */
const CLEAR_BATCH = 500;

/** The ioredis client for a mode; options chosen so nothing ever waits for Redis beyond the timeout. */
export function redisClient(opts: RedisStoreOptions): Redis | Cluster {
  const u = new URL(opts.url);
  const host = u.hostname;
  const port = Number(u.port || 6379);
  const timeout = opts.timeoutMs ?? 50;
  const common: RedisOptions = {
    commandTimeout: timeout,
    connectTimeout: Math.max(1000, timeout),
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(50 * times, 500),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  switch (opts.mode ?? 'Standalone') {
    case 'Cluster':
      return new Cluster([{ host, port }], {
        redisOptions: common,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times: number) => Math.min(50 * times, 500),
      });
    case 'Sentinel':
      return new Redis({
        ...common,
        sentinels: [{ host, port }],
        name: opts.sentinelName ?? 'mymaster',
      });
    default: {
      const db = Number(u.pathname.slice(1) || 0);
      return new Redis({ ...common, host, port, db });
    }
  }
}
