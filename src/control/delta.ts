import type { WirePool } from './messages.js';

/** The pools a router holds after a delta: upserts replace, removals drop. */
export function applyDelta(
  current: ReadonlyMap<string, WirePool>,
  upserts: readonly WirePool[],
  removed: readonly string[],
): Map<string, WirePool> {
  const next = new Map(current);
  for (const name of removed) next.delete(name);
  for (const p of upserts) next.set(p.name, p);
  return next;
}
