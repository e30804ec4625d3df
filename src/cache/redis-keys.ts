import { Cluster, type Redis } from 'ioredis';

/** `s` as a literal in a Redis glob pattern (SCAN MATCH). */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

export interface UnlinkPrefixOptions {
  /** Keys SCAN looks at per step (a hint to Redis); each step's keys are UNLINKed at once. */
  batch?: number;
  /** Wraps every round trip (e.g. with a timeout); `what` names the command. */
  step?: <T>(p: Promise<T>, what: string) => Promise<T>;
}

/**
 * Deletes every key under `prefix` and returns how many were deleted: SCAN … MATCH prefix* in batches,
 * each batch UNLINKed (freed off the server's main thread), on every master in Cluster mode. A Cluster
 * refuses a multi-key command whose keys hash to different slots (CROSSSLOT), even on the master that
 * holds them all, so there each key goes in its own UNLINK, pipelined in one write. Keys written while
 * it runs may survive it. Rejects on the first failure.
 */
export async function unlinkPrefix(
  client: Redis | Cluster,
  prefix: string,
  o: UnlinkPrefixOptions = {},
): Promise<number> {
  const step = o.step ?? (<T>(p: Promise<T>) => p);
  const batch = o.batch ?? 500;
  const cluster = client instanceof Cluster;
  const nodes: Redis[] = cluster ? client.nodes('master') : [client];
  const match = globEscape(prefix) + '*';
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await step(node.scan(cursor, 'MATCH', match, 'COUNT', batch), 'SCAN');
      cursor = next;
      if (keys.length === 0) continue;
      if (!cluster) {
        deleted += await step(node.unlink(...keys), 'UNLINK');
        continue;
      }
      const p = node.pipeline();
      for (const k of keys) p.unlink(k);
      const replies = (await step(p.exec(), 'UNLINK')) ?? [];
      for (const [err, n] of replies) {
        if (err) throw err;
        deleted += Number(n);
      }
    } while (cursor !== '0');
  }
  return deleted;
}
