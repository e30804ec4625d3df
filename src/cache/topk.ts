import { SibylError } from '../util/errors.js';

/**
 * The K keys with the largest values: an indexed binary min-heap (the smallest of the K at the root, so
 * a newcomer is compared with it in O(1)) plus a key → slot map, so a key already held has its value
 * raised in O(log K). Values are whatever the caller ranks by (sketch.ts: count-min estimates).
 */
export class TopK {
  private readonly keys: string[] = [];
  private readonly values: number[] = [];
  private readonly slot = new Map<string, number>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new SibylError('ERR_CONFIG_INVALID', `topK must be a positive integer, not ${capacity}`);
  }

  get size(): number {
    return this.keys.length;
  }

  has(key: string): boolean {
    return this.slot.has(key);
  }

  value(key: string): number | undefined {
    const i = this.slot.get(key);
    return i === undefined ? undefined : this.values[i];
  }

  /** The smallest value held (the bar a newcomer must beat once full); 0 while not full. */
  get threshold(): number {
    return this.keys.length < this.capacity ? 0 : (this.values[0] as number);
  }

  /**
   * Sets `key`'s value if held, else takes it in if there is room or it beats the smallest (which is
   * pushed out and returned). Returns whether `key` is held afterwards.
   */
  offer(key: string, value: number): { hot: boolean; evicted?: string } {
    const i = this.slot.get(key);
    if (i !== undefined) {
      const old = this.values[i] as number;
      this.values[i] = value;
      if (value > old) this.down(i);
      else this.up(i);
      return { hot: true };
    }
    if (this.keys.length < this.capacity) {
      this.keys.push(key);
      this.values.push(value);
      this.slot.set(key, this.keys.length - 1);
      this.up(this.keys.length - 1);
      return { hot: true };
    }
    if (value <= (this.values[0] as number)) return { hot: false };
    const evicted = this.keys[0] as string;
    this.slot.delete(evicted);
    this.keys[0] = key;
    this.values[0] = value;
    this.slot.set(key, 0);
    this.down(0);
    return { hot: true, evicted };
  }

  /** Multiplies every value by `factor` (> 0): the order stays. */
  rescale(factor: number): void {
    for (let i = 0; i < this.values.length; i++) this.values[i] = (this.values[i] as number) * factor;
  }

  /** Every key and value, largest first. */
  sorted(): Array<{ key: string; value: number }> {
    return this.keys
      .map((key, i) => ({ key, value: this.values[i] as number }))
      .sort((a, b) => b.value - a.value);
  }

  clear(): void {
    this.keys.length = 0;
    this.values.length = 0;
    this.slot.clear();
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.values[parent] as number) <= (this.values[i] as number)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.keys.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && (this.values[l] as number) < (this.values[m] as number)) m = l;
      if (r < n && (this.values[r] as number) < (this.values[m] as number)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const ka = this.keys[a] as string;
    const kb = this.keys[b] as string;
    this.keys[a] = kb;
    this.keys[b] = ka;
    const v = this.values[a] as number;
    this.values[a] = this.values[b] as number;
    this.values[b] = v;
    this.slot.set(kb, a);
    this.slot.set(ka, b);
  }
}
