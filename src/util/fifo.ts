/**
 * A first-in first-out queue on a ring buffer that grows by doubling: O(1) push and shift with no
 * per-operation allocation (Array.prototype.shift is O(n)).
 */
export class Fifo<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(8).fill(undefined);
  private start = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.start + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  /** The oldest item, or undefined when empty. */
  peek(): T | undefined {
    return this.count > 0 ? this.items[this.start] : undefined;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.start];
    this.items[this.start] = undefined;
    this.start = (this.start + 1) & (this.items.length - 1);
    this.count--;
    return item;
  }

  private grow(): void {
    const n = this.items.length;
    const items = new Array<T | undefined>(n * 2).fill(undefined);
    for (let k = 0; k < this.count; k++) items[k] = this.items[(this.start + k) & (n - 1)];
    this.items = items;
    this.start = 0;
  }
}
