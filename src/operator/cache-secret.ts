import { ApiException, type CoreV1Api } from '@kubernetes/client-node';

export type RedisUrlResult =
  | { ok: true; url: string }
  | { ok: false; reason: 'SecretNotFound' | 'SecretKeyNotFound' | 'SecretValueInvalid'; message: string };

/**
 * The Redis URL a CacheTier's l2.redis.secretRef points at: the Secret's `key` (default "url") in the
 * tier's namespace. A missing Secret, a missing key or a value that is no redis:// URL is the user's
 * to fix (a condition, not a retry); any other failure (the API server away) throws, so the reconcile
 * is retried and the config in force stays.
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
