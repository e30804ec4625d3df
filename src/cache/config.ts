import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CacheTierSpec } from '../api/cachetier.js';
import { parseQuantity } from '../telemetry/quantity.js';
import { parseDuration } from '../util/duration.js';
import { errorMessage } from '../util/errors.js';
import type { RedisMode } from './l2-redis.js';

/**
 * A pool's cache as the routes file gives it (`pools[].cache`): CacheTierSpec without pools and
 * poolSelector (the pool is the one it sits in). The operator hands the same shape to routers from a
 * CacheTier.
 */
const p = CacheTierSpec.properties;
export const PoolCacheSpec = Type.Object({
  methods: p.methods,
  keyHeaders: p.keyHeaders,
  l1: p.l1,
  l2: p.l2,
  l3: p.l3,
  warming: p.warming,
});
export type PoolCacheSpec = Static<typeof PoolCacheSpec>;

/** The spec with defaults applied and durations and quantities in ms and bytes. */
export interface CacheSettings {
  /** Cached method → its TTL, ms. */
  methods: ReadonlyMap<string, number>;
  keyHeaders: readonly string[];
  l1: { maxBytes: number; maxEntries: number; maxTtlMs?: number };
  l2?: { url: string; mode: RedisMode; sentinelName?: string; maxTtlMs?: number; timeoutMs: number };
  l3?: { path: string; maxBytes: number; maxTtlMs?: number };
  warming: WarmingSettings;
}

/** Predictive warming (warmer.ts), defaults resolved. */
export interface WarmingSettings {
  enabled: boolean;
  /** The frequency sketch's decay window: counts halve every window. */
  windowMs: number;
  /** Hot entries expiring within this are refreshed. */
  horizonMs: number;
  /** How many keys the hot set holds. */
  topK: number;
  /** A key is hot only with at least this decayed count. */
  minFrequency: number;
  /** Refresh calls allowed, as a percentage of the pool's recent call rate (warmer.ts). */
  budgetPercent: number;
}

/**
 * Warming as the CRD defaults it: a `warming` block turns it on unless `enabled: false`; no block means
 * no warming (as on the API server, whose defaults apply only inside an object that is present).
 */
export function warmingSettings(w: PoolCacheSpec['warming']): WarmingSettings {
  return {
    enabled: w !== undefined && w.enabled !== false,
    windowMs: parseDuration(w?.window ?? '60s'),
    horizonMs: parseDuration(w?.horizon ?? '60s'),
    topK: w?.topK ?? 100,
    minFrequency: w?.minFrequency ?? 2,
    budgetPercent: w?.budgetPercent ?? 10,
  };
}

const ms = (d: string | undefined) => (d === undefined ? undefined : parseDuration(d));
const bytes = (b: number | string | undefined, dflt: string) =>
  typeof b === 'number' ? b : parseQuantity(b ?? dflt);

/** Resolves a validated spec (cacheConfigIssues empty). L1 is always on (the CRD's defaults). */
export function cacheSettings(spec: PoolCacheSpec): CacheSettings {
  const methods = new Map(spec.methods.map((m) => [m.method, parseDuration(m.ttl ?? '60s')]));
  const l1 = {
    maxBytes: bytes(spec.l1?.maxBytes, '64Mi'),
    maxEntries: spec.l1?.maxEntries ?? 100_000,
    maxTtlMs: ms(spec.l1?.ttl),
  };
  const r = spec.l2?.redis;
  const l2 =
    spec.l2 && r?.url
      ? {
          url: r.url,
          mode: r.mode ?? 'Standalone',
          sentinelName: r.sentinelName,
          maxTtlMs: ms(spec.l2.ttl),
          timeoutMs: parseDuration(spec.l2.timeout ?? '50ms'),
        }
      : undefined;
  const l3 = spec.l3 && {
    path: spec.l3.path,
    maxBytes: bytes(spec.l3.maxBytes, '1Gi'),
    maxTtlMs: ms(spec.l3.ttl),
  };
  const warming = warmingSettings(spec.warming);
  return { methods, keyHeaders: spec.keyHeaders ?? [], l1, l2, l3, warming };
}

/**
 * Every problem in a routes file's `cache` (paths under `at`): structure (TypeBox), unknown fields,
 * and what the CRD's CEL rules check for these fields, done here by hand (a routes file has no
 * Secrets, so the Redis URL must be given inline).
 */
export function cacheConfigIssues(value: unknown, at: string): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(PoolCacheSpec, value)) {
    const path = at + e.path.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
    if (!seen.has(path)) issues.push({ path, message: e.message });
    seen.add(path);
  }
  unknownFields(PoolCacheSpec, value, at, issues);
  if (issues.length) return issues;
  const spec = value as PoolCacheSpec;
  const redis = spec.l2?.redis;
  if (redis && !redis.url)
    issues.push({ path: `${at}.l2.redis.url`, message: 'required in a routes file (no secretRef)' });
  if (redis?.secretRef)
    issues.push({ path: `${at}.l2.redis.secretRef`, message: 'not supported in a routes file: give url' });
  if (redis?.mode === 'Sentinel' && !redis.sentinelName)
    issues.push({
      path: `${at}.l2.redis.sentinelName`,
      message: 'Sentinel mode needs sentinelName (the master group name)',
    });
  const methods = new Set<string>();
  spec.methods.forEach((m, i) => {
    if (methods.has(m.method))
      issues.push({ path: `${at}.methods[${i}]`, message: `${m.method} listed twice` });
    methods.add(m.method);
  });
  for (const [path, b] of [
    ['l1.maxBytes', spec.l1?.maxBytes],
    ['l3.maxBytes', spec.l3?.maxBytes],
  ] as const) {
    if (b === undefined) continue;
    let n: number;
    try {
      n = typeof b === 'number' ? b : parseQuantity(b);
    } catch (e) {
      issues.push({ path: `${at}.${path}`, message: errorMessage(e) });
      continue;
    }
    if (!(n > 0)) issues.push({ path: `${at}.${path}`, message: 'must be a positive number of bytes' });
  }
  return issues;
}

function unknownFields(
  schema: TSchema,
  v: unknown,
  at: string,
  out: Array<{ path: string; message: string }>,
): void {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  const items = (schema as { items?: TSchema }).items;
  if (props && typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const [k, child] of Object.entries(v)) {
      const s = props[k];
      if (!s)
        out.push({ path: `${at}.${k}`, message: `unknown field (known: ${Object.keys(props).join(', ')})` });
      else unknownFields(s, child, `${at}.${k}`, out);
    }
  } else if (items && Array.isArray(v)) {
    v.forEach((x: unknown, i) => unknownFields(items, x, `${at}[${i}]`, out));
  }
}
