import { SibylError, type ErrorCode } from '../util/errors.js';

/**
 * The cache's contracts (docs/architecture.md, "API" and "Cache tiers"): a `CacheStore` per tier (L1 memory, L2 Redis, L3
 * disk; one implementation per file), the response shape they hold, and the counters each tier keeps.
 * Stores deal in opaque bytes under hex keys; codec.ts turns a `CachedResponse` into those bytes and
 * back, tiered.ts puts the tiers in order and coalesces misses.
 */

export type TierName = 'l1' | 'l2' | 'l3';

/** Header fields as node:http2 gives them (no pseudo-headers). */
export type HeaderFields = Record<string, string | string[]>;

/**
 * One stored gRPC response, replayed byte for byte to a later caller. Only responses with grpc-status
 * 0 are ever stored (tiered.ts checks).
 */
export interface CachedResponse {
  /** Response headers as sent to the client; for a Trailers-Only response, every field, status included. */
  headers: HeaderFields;
  /** The response body as received: length-prefixed gRPC messages, compressed flag and all. */
  body: Buffer;
  /** Trailers, grpc-status among them; empty for a Trailers-Only response. */
  trailers: HeaderFields;
  /** The response was Trailers-Only (one HEADERS frame with END_STREAM, no body). */
  trailersOnly?: boolean;
}

/** An entry as the tiers keep it: the response and the wall-clock instant it stops being fresh. */
export interface CacheEntry {
  response: CachedResponse;
  /** Wall-clock ms (epoch) after which the entry must not be served, whichever tier holds it. */
  expiresAtMs: number;
}

/** What a store knows about itself (the tiered cache counts hits, misses and fills). */
export interface StoreStats {
  evictions: number;
  bytes: number;
  entries: number;
}

/** Counters of one tier (exposed in metrics and, as CacheCounters, in the routers' LoadReports). */
export interface TierCounters extends StoreStats {
  hits: number;
  misses: number;
  fills: number;
  /** Lookups or fills that failed (Redis down, timeout, breaker open, an unreadable file). */
  errors: number;
}

/**
 * One tier. Values are opaque bytes; keys are lower-case hex (key.ts). A store never serves an entry
 * past the TTL it was set with. Every failure rejects with SibylError code ERR_CACHE, so the tiered
 * cache can treat it as a miss and carry on: no call ever fails because of a cache.
 */
export interface CacheStore {
  readonly tier: TierName;
  /** Longest TTL this tier keeps an entry (its spec's ttl), ms; entries set with more are capped. */
  readonly maxTtlMs?: number;
  get(key: string): Promise<Buffer | undefined>;
  /** Stores `value` for `ttlMs` (> 0). */
  set(key: string, value: Buffer, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Drops every entry this store holds for its cache (L2: only its own key prefix). */
  clear(): Promise<void>;
  stats(): StoreStats;
  close(): Promise<void>;
}

export function cacheError(message: string, cause?: unknown): SibylError {
  const code: ErrorCode = 'ERR_CACHE';
  return new SibylError(code, message, cause === undefined ? undefined : { cause });
}

/** `x-sibyl-cache` request metadata: bypass = neither read nor write; refresh = skip reads, write the answer. */
export type CacheMode = 'normal' | 'bypass' | 'refresh';

export const CACHE_MODE_HEADER = 'x-sibyl-cache';

export function cacheModeOf(value: string | undefined): CacheMode {
  const v = value?.trim().toLowerCase();
  return v === 'bypass' || v === 'refresh' ? v : 'normal';
}
