import { Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisClient, type RedisMode } from '../cache/l2-redis.js';
import { unlinkPrefix } from '../cache/redis-keys.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';

/** A tier's Redis as the operator reaches it. */
export interface RedisTarget {
  url: string;
  mode: RedisMode;
  sentinelName?: string;
}

export type Reachability =
  { state: 'Unknown'; message: string } | { state: 'True' | 'False'; message: string; atMs: number };

export interface RedisAdminOptions {
  clock: Clock;
  log: Logger;
  /** A ping (connect included) or one SCAN/UNLINK step not answered in this fails (default 2 s). */
  timeoutMs?: number;
  /** At most one ping per Redis per this long (default 10 s). */
  probeEveryMs?: number;
  /** Called when a probe's answer differs from the one before (the tier is reconciled again). */
  onChange?: (target: RedisTarget) => void;
}

interface Entry {
  client: Redis | Cluster;
  lastError?: string;
  result: Reachability;
  probing: boolean;
  usedMs: number;
}

/** How the Redis is named in messages: host and port, never the credentials in the URL. */
function redisName(t: RedisTarget): string {
  try {
    const u = new URL(t.url);
    return `${u.protocol}//${u.host}${t.mode === 'Standalone' ? '' : ` (${t.mode})`}`;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * The operator's side of each tier's Redis: whether it answers (RedisReachable), and deleting a pool's
 * keys (flush, and cleanup when a tier is deleted). One client per Redis, made on first use. Probes
 * are level-based and never hold up a reconcile: `reachability` answers the last result at once and,
 * when it is older than probeEveryMs, starts a ping in the background whose answer arrives through
 * onChange.
 */
export class RedisAdmin {
  private readonly entries = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly probeEveryMs: number;

  constructor(private readonly o: RedisAdminOptions) {
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.probeEveryMs = o.probeEveryMs ?? 10_000;
  }

  reachability(t: RedisTarget): Reachability {
    const e = this.entry(t);
    const r = e.result;
    const stale = r.state === 'Unknown' || this.o.clock.now() - r.atMs >= this.probeEveryMs;
    if (stale && !e.probing) void this.probe(t, e);
    return r;
  }

  /** Pings now and waits for the answer (tests, and before a flush). */
  async probeNow(t: RedisTarget): Promise<Reachability> {
    const e = this.entry(t);
    await this.probe(t, e);
    return e.result;
  }

  private async probe(t: RedisTarget, e: Entry): Promise<void> {
    e.probing = true;
    const before = e.result;
    try {
      await this.ready(e);
      await withTimeout(e.client.ping(), this.timeoutMs, 'PING');
      e.result = { state: 'True', message: `${redisName(t)} answered PING`, atMs: this.o.clock.now() };
    } catch (err) {
      e.result = {
        state: 'False',
        message: `${redisName(t)}: ${errorMessage(err)}`,
        atMs: this.o.clock.now(),
      };
    } finally {
      e.probing = false;
    }
    if (before.state !== e.result.state || before.message !== e.result.message) this.o.onChange?.(t);
  }

  /**
   * Deletes every key under `prefix`: SCAN MATCH prefix* in batches, each batch UNLINKed (freed off
   * the server's main thread), on every master in Cluster mode, where keys go one per UNLINK since a
   * batch may span hash slots. Returns how many keys were deleted. Keys written while it runs may
   * survive it (routers drop theirs when they see the new flush token). Rejects when Redis fails.
   */
  async deletePrefix(t: RedisTarget, prefix: string, batch = 500): Promise<number> {
    const e = this.entry(t);
    await this.ready(e);
    return unlinkPrefix(e.client, prefix, {
      batch,
      step: (p, what) => withTimeout(p, this.timeoutMs, what),
    });
  }

  /** Closes clients nobody asked about in `idleMs` (tiers deleted or moved to another Redis). */
  closeIdle(idleMs = 10 * 60_000): void {
    const now = this.o.clock.now();
    for (const [k, e] of this.entries) {
      if (now - e.usedMs < idleMs || e.probing) continue;
      this.entries.delete(k);
      e.client.disconnect();
    }
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) e.client.disconnect();
  }

  private entry(t: RedisTarget): Entry {
    const key = `${t.mode}\u0000${t.url}\u0000${t.sentinelName ?? ''}`;
    let e = this.entries.get(key);
    if (!e) {
      const client = redisClient({
        url: t.url,
        mode: t.mode,
        ...(t.sentinelName ? { sentinelName: t.sentinelName } : {}),
        keyPrefix: '',
        timeoutMs: this.timeoutMs,
      });
      const made: Entry = {
        client,
        result: { state: 'Unknown', message: `${redisName(t)} not probed yet` },
        probing: false,
        usedMs: 0,
      };
      // ioredis reconnects on its own; the last error names why it is away.
      client.on('error', (err: Error) => (made.lastError = err.message));
      client.on('ready', () => (made.lastError = undefined));
      this.entries.set(key, made);
      e = made;
    }
    e.usedMs = this.o.clock.now();
    return e;
  }

  /** Resolves once the client is connected; rejects after timeoutMs naming the last connection error. */
  private ready(e: Entry): Promise<void> {
    if (e.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        e.client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        e.client.off('ready', done);
        reject(
          new Error(`not reachable within ${this.timeoutMs} ms${e.lastError ? `: ${e.lastError}` : ''}`),
        );
      }, this.timeoutMs);
      e.client.on('ready', done);
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} not answered within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
