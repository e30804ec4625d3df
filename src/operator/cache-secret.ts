import { ApiException, type CoreV1Api } from '@kubernetes/client-node';
import { backoffMs } from '../util/backoff.js';
import { systemRandom, type Random } from '../util/clock.js';

/** RBAC refuses the operator the Secret: the cluster admin's to grant (the chart's operator.secretAccess). */
export const SECRET_FORBIDDEN = 'SecretForbidden';

export type RedisUrlResult =
  | { ok: true; url: string }
  | {
      ok: false;
      reason: 'SecretNotFound' | 'SecretKeyNotFound' | 'SecretValueInvalid' | typeof SECRET_FORBIDDEN;
      message: string;
    };

/**
 * The Redis URL a CacheTier's l2.redis.secretRef points at: the Secret's `key` (default "url") in the
 * tier's namespace, read with one GET by name (the operator never lists or watches Secrets, so RBAC
 * can grant it `get` alone, per namespace and per name). A missing Secret, a missing key, a value that
 * is no redis:// URL or a read RBAC forbids is for a person to fix (a condition, not a retry); any
 * other failure (the API server away) throws, so the reconcile is retried and the config in force stays.
 */
export async function readRedisUrl(
  core: CoreV1Api,
  namespace: string,
  ref: { name: string; key?: string },
): Promise<RedisUrlResult> {
  const key = ref.key ?? 'url';
  let data: Record<string, string> | undefined;
  try {
    data = (await core.readNamespacedSecret({ name: ref.name, namespace })).data;
  } catch (e) {
    if (e instanceof ApiException && e.code === 404)
      return {
        ok: false,
        reason: 'SecretNotFound',
        message: `l2.redis.secretRef names Secret ${ref.name}, which does not exist in ${namespace}`,
      };
    if (e instanceof ApiException && e.code === 403)
      return {
        ok: false,
        reason: SECRET_FORBIDDEN,
        message: secretForbiddenMessage(namespace, ref.name, statusMessage(e.body)),
      };
    throw e;
  }
  const b64 = data?.[key];
  if (b64 === undefined)
    return {
      ok: false,
      reason: 'SecretKeyNotFound',
      message: `Secret ${ref.name} has no key "${key}" (keys: ${Object.keys(data ?? {}).join(', ') || 'none'})`,
    };
  const url = Buffer.from(b64, 'base64').toString('utf8').trim();
  if (!/^rediss?:\/\/\S+$/.test(url))
    return {
      ok: false,
      reason: 'SecretValueInvalid',
      message: `Secret ${ref.name} key "${key}" is not a redis:// or rediss:// URL`,
    };
  return { ok: true, url };
}

/**
 * What a CacheTier's condition says when RBAC refuses the operator its Secret: the permission missing
 * (as `kubectl auth can-i` would name it) and the chart value that grants it (charts/sibyl/values.yaml,
 * operator.secretAccess: a Role per listed namespace, narrowed to `names` when that is set). `denial`
 * is the API server's own Status message, which names the account it refused.
 */
export function secretForbiddenMessage(namespace: string, name: string, denial?: string): string {
  const grant =
    `grant it with the Helm value operator.secretAccess.namespaces (add ${namespace}; ` +
    `if operator.secretAccess.names is set, add ${name} to it too)`;
  return (
    `the operator may not read Secret ${name} in ${namespace}: RBAC gives it no "get" on "secrets" ` +
    `(namespace ${namespace}, name ${name}); ${grant}${denial ? `. The API server said: ${denial}` : ''}`
  );
}

/** The `message` of a Kubernetes Status body, which the client hands over as JSON text or parsed. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b) as unknown;
    } catch {
      return undefined; // not a Status (a proxy's page): the condition says enough without it
    }
  }
  const m = (b as { message?: unknown } | null)?.message;
  return typeof m === 'string' && m ? m : undefined;
}

/**
 * Secrets RBAC refused, each with the time its read may be tried again: the delay doubles from
 * `initialMs` to `maxMs` (with ±20% jitter, util/backoff.ts) while the refusals go on, so a tier the
 * operator may not serve costs one refused GET per delay rather than one per reconcile, and a grant
 * (helm upgrade) is seen within about `maxMs`. Any other result clears the entry. Pure: time is passed in.
 */
export class DeniedSecrets {
  private readonly byKey = new Map<string, { retryAt: number; attempt: number; result: RedisUrlResult }>();

  constructor(
    private readonly o: { initialMs: number; maxMs: number },
    private readonly random: Random = systemRandom,
  ) {}

  /** The refusal still in force for `key` (namespace/name), or undefined: read the Secret now. */
  pending(key: string, nowMs: number): RedisUrlResult | undefined {
    const d = this.byKey.get(key);
    return d && nowMs < d.retryAt ? d.result : undefined;
  }

  /** Notes a read's result and returns it. */
  record(key: string, result: RedisUrlResult, nowMs: number): RedisUrlResult {
    // Entries no tier asked about for a while (their tiers are gone or changed Secret) are dropped.
    for (const [k, d] of this.byKey) if (nowMs > d.retryAt + this.o.maxMs) this.byKey.delete(k);
    if (result.ok || result.reason !== SECRET_FORBIDDEN) {
      this.byKey.delete(key);
      return result;
    }
    const attempt = (this.byKey.get(key)?.attempt ?? -1) + 1;
    const delay = backoffMs(attempt, this.random, { ...this.o, multiplier: 2, jitter: 0.2 });
    this.byKey.set(key, { retryAt: nowMs + delay, attempt, result });
    return result;
  }
}
