import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import { cacheError, type CacheStore, type StoreStats } from './types.js';

export interface DiskStoreOptions {
  /** The folder (made if missing); one file per entry, named by its key. */
  path: string;
  /** Bound on the bytes of all files; the least recently used go first. */
  maxBytes: number;
  /** Longest TTL an entry keeps here, ms (the spec's l3.ttl). */
  maxTtlMs?: number;
  /** Wall-clock ms (epoch): expiry must hold across restarts. Date.now when absent. */
  wallNow?: () => number;
  log?: Logger;
}

/**
 * One file: "SBL3" | u32 value length | f64 expiresAtMs (wall clock) | sha256(expiresAt ‖ value) | value.
 * Big-endian. A file whose length or checksum does not match (torn by a crash, corrupted on disk) is
 * never served: it is deleted and counted as a miss.
 */
const MAGIC = Buffer.from('SBL3');
const HEADER = 4 + 4 + 8 + 32;
const KEY = /^[0-9a-f]{16,128}$/;

/**
 * L3: this router's local disk, bounded by bytes, kept across restarts. Writes are atomic (a temp file
 * in the same folder, then rename(2)), so a reader sees the old file or the new one, never half of one;
 * a crash mid-write leaves only a temp file, removed at the next start. At start the index (key → size,
 * in least-recently-used order by mtime) is rebuilt from the folder; lookups and evictions use it, so a
 * miss costs no I/O. Not fsynced: after a power loss an entry may be lost or torn, and the checksum
 * catches the torn one.
 */
export class DiskStore implements CacheStore {
  readonly tier = 'l3' as const;
  readonly maxTtlMs: number | undefined;
  /** key → file size, least recently used first (a Map keeps insertion order; a hit re-inserts). */
  private readonly index = new Map<string, number>();
  private totalBytes = 0;
  private evictions = 0;
  /** Files found torn or corrupted (and deleted) since start. */
  corrupted = 0;
  private seq = 0;
  private readonly wallNow: () => number;
  /** The index rebuilt from the folder; every operation waits for it. */
  readonly ready: Promise<void>;

  constructor(private readonly opts: DiskStoreOptions) {
    this.maxTtlMs = opts.maxTtlMs;
    this.wallNow = opts.wallNow ?? Date.now;
    this.ready = this.scan();
    // Awaited by every operation; marked handled here so a failed scan is not an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** The folder this store keeps its files in. */
  get dir(): string {
    return this.opts.path;
  }

  async get(key: string): Promise<Buffer | undefined> {
    await this.ready;
    if (!this.index.has(key)) return undefined;
    let buf: Buffer;
    try {
      buf = await readFile(this.file(key));
    } catch (e) {
      this.forget(key);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw cacheError(`cache file ${key}: ${errorMessage(e)}`, e);
    }
    const value = this.verify(buf);
    if (value === undefined) {
      this.corrupted++;
      this.opts.log?.warn({ key, path: this.opts.path }, 'corrupted cache file skipped and deleted');
      await this.remove(key);
      return undefined;
    }
    if (value.expiresAtMs <= this.wallNow()) {
      await this.remove(key);
      return undefined;
    }
    // Most recently used now.
    const size = this.index.get(key);
    if (size !== undefined) {
      this.index.delete(key);
      this.index.set(key, size);
    }
    return value.value;
  }

  async set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    await this.ready;
    const size = HEADER + value.length;
    if (size > this.opts.maxBytes) return;
    const head = Buffer.allocUnsafe(HEADER);
    MAGIC.copy(head, 0);
    head.writeUInt32BE(value.length, 4);
    head.writeDoubleBE(this.wallNow() + ttlMs, 8);
    createHash('sha256').update(head.subarray(8, 16)).update(value).digest().copy(head, 16);
    const tmp = join(this.opts.path, `${key}.${process.pid}.${this.seq++}.tmp`);
    try {
      await writeFile(tmp, Buffer.concat([head, value]));
      await rename(tmp, this.file(key));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw cacheError(`cache file ${key}: ${errorMessage(e)}`, e);
    }
    this.forget(key);
    this.index.set(key, size);
    this.totalBytes += size;
    await this.evict();
  }

  async delete(key: string): Promise<void> {
    await this.ready;
    await this.remove(key);
  }

  /** Deletes every entry file (those in the index and any other file named like a key). */
  async clear(): Promise<void> {
    await this.ready;
    const keys = new Set(this.index.keys());
    try {
      for (const name of await readdir(this.opts.path)) if (KEY.test(name)) keys.add(name);
    } catch (e) {
      throw cacheError(`disk cache ${this.opts.path}: ${errorMessage(e)}`, e);
    }
    for (const key of keys) await this.remove(key);
  }

  stats(): StoreStats {
    return { evictions: this.evictions, bytes: this.totalBytes, entries: this.index.size };
  }

  async close(): Promise<void> {
    await this.ready.catch(() => undefined);
  }

  /** The value and expiry in a file's bytes, or undefined when the file is torn or corrupted. */
  private verify(buf: Buffer): { value: Buffer; expiresAtMs: number } | undefined {
    if (buf.length < HEADER || !buf.subarray(0, 4).equals(MAGIC)) return undefined;
    const length = buf.readUInt32BE(4);
    if (buf.length !== HEADER + length) return undefined;
    const value = buf.subarray(HEADER);
    const sum = createHash('sha256').update(buf.subarray(8, 16)).update(value).digest();
    if (!sum.equals(buf.subarray(16, HEADER))) return undefined;
    return { value, expiresAtMs: buf.readDoubleBE(8) };
  }

  private file(key: string): string {
    if (!KEY.test(key)) throw cacheError(`not a cache key: ${key.slice(0, 80)}`);
    return join(this.opts.path, key);
  }

  private forget(key: string): void {
    const size = this.index.get(key);
    if (size === undefined) return;
    this.index.delete(key);
    this.totalBytes -= size;
  }

  private async remove(key: string): Promise<void> {
    this.forget(key);
    await unlink(this.file(key)).catch(() => undefined);
  }

  private async evict(): Promise<void> {
    while (this.totalBytes > this.opts.maxBytes) {
      const oldest = this.index.keys().next().value;
      if (oldest === undefined) break;
      this.evictions++;
      await this.remove(oldest);
    }
  }

  /** Rebuilds the index from the folder: entries oldest first by mtime; leftover temp files removed. */
  private async scan(): Promise<void> {
    const dir = this.opts.path;
    try {
      await mkdir(dir, { recursive: true });
      const found: Array<{ key: string; size: number; mtimeMs: number }> = [];
      for (const name of await readdir(dir)) {
        const p = join(dir, name);
        if (name.endsWith('.tmp')) {
          await unlink(p).catch(() => undefined);
          continue;
        }
        if (!KEY.test(name)) continue;
        const s = await stat(p).catch(() => undefined);
        if (s?.isFile()) found.push({ key: name, size: s.size, mtimeMs: s.mtimeMs });
      }
      found.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const f of found) {
        this.index.set(f.key, f.size);
        this.totalBytes += f.size;
      }
      await this.evict();
      this.opts.log?.debug(
        { path: dir, entries: this.index.size, bytes: this.totalBytes },
        'disk cache index rebuilt',
      );
    } catch (e) {
      this.opts.log?.warn({ path: dir, err: errorMessage(e) }, 'disk cache unusable');
      throw cacheError(`disk cache ${dir}: ${errorMessage(e)}`, e);
    }
  }
}
