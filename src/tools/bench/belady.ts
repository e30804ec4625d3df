/**
 * Belady's MIN (L. A. Belady, "A study of replacement algorithms for a virtual-storage computer", IBM
 * Systems Journal 5(2), 1966), offline: knowing every future call, on a miss with a full cache evict the
 * entry whose next use is farthest away, and do not admit the newcomer at all when its own next use is
 * farther still (MIN with bypass, the ceiling for a cache that may decline to admit, as TinyLFU does).
 *
 * With TTLs (the same for every policy in the benchmark): an entry is filled at a miss and expires ttlMs
 * later whatever happens; a use after that is a miss, so a next use beyond the entry's expiry counts as
 * "never" (such an entry is the first to go, and such a newcomer is not admitted). Exactly optimal for
 * demand caching without TTLs; with fill-time TTLs it is the standard offline reference (refilling a
 * key later can move its expiry, which MIN does not plan for). It bounds demand caching only: a
 * prefetching cache (sibyl's warmer) fetches entries before any call asks, so it can beat it.
 */
export interface BeladyResult {
  hits: number;
  misses: number;
}

export function beladyHits(
  atMs: ArrayLike<number>,
  key: ArrayLike<number>,
  capacity: number,
  ttlMs: number,
): BeladyResult {
  const n = key.length;
  // next[i]: the index of the next call for key[i], or n when there is none.
  const next = new Int32Array(n);
  const seen = new Map<number, number>();
  for (let i = n - 1; i >= 0; i--) {
    const k = key[i] as number;
    next[i] = seen.get(k) ?? n;
    seen.set(k, i);
  }
  /** Cached key → [expiry ms, next useful call index (n = never)]. */
  const cache = new Map<number, { exp: number; nextUse: number }>();
  // Max-heap of [nextUse, key] with lazy deletion: an item is current when the key is cached with that nextUse.
  const heap = new MaxHeap();
  let hits = 0;
  const useful = (i: number, exp: number) => {
    const j = next[i] as number;
    return j < n && (atMs[j] as number) < exp ? j : n;
  };
  for (let i = 0; i < n; i++) {
    const k = key[i] as number;
    const t = atMs[i] as number;
    const e = cache.get(k);
    if (e && e.exp > t) {
      hits++;
      e.nextUse = useful(i, e.exp);
      heap.push(e.nextUse, k);
      continue;
    }
    if (e) cache.delete(k);
    const exp = t + ttlMs;
    const nu = useful(i, exp);
    if (nu === n) continue; // never used again while fresh: not worth a slot
    if (cache.size >= capacity) {
      let victim: number | undefined;
      let victimUse = -1;
      while (heap.size > 0) {
        const [use, vk] = heap.peek();
        const ve = cache.get(vk);
        if (!ve || ve.nextUse !== use) {
          heap.pop();
          continue;
        }
        victim = vk;
        victimUse = use;
        break;
      }
      if (victim === undefined || victimUse <= nu) continue; // the newcomer is the farthest: bypass
      heap.pop();
      cache.delete(victim);
    }
    cache.set(k, { exp, nextUse: nu });
    heap.push(nu, k);
  }
  return { hits, misses: n - hits };
}

/** A binary max-heap of (priority, key) pairs. */
class MaxHeap {
  private readonly pri: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.pri.length;
  }

  peek(): [number, number] {
    return [this.pri[0] as number, this.keys[0] as number];
  }

  push(p: number, k: number): void {
    this.pri.push(p);
    this.keys.push(k);
    let i = this.pri.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.pri[parent] as number) >= (this.pri[i] as number)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): void {
    const last = this.pri.length - 1;
    this.swap(0, last);
    this.pri.pop();
    this.keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.pri.length && (this.pri[l] as number) > (this.pri[m] as number)) m = l;
      if (r < this.pri.length && (this.pri[r] as number) > (this.pri[m] as number)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const p = this.pri[a] as number;
    this.pri[a] = this.pri[b] as number;
    this.pri[b] = p;
    const k = this.keys[a] as number;
    this.keys[a] = this.keys[b] as number;
    this.keys[b] = k;
  }
}
