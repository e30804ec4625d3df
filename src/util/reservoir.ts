import type { Random } from './clock.js';

/**
 * A bounded uniform sample of a stream (Vitter's algorithm R, "Random sampling with a reservoir",
 * ACM TOMS 1985): after n offers each item is kept with probability capacity / n, in O(capacity)
 * memory. `drain()` hands the sample over and starts again.
 */
export class Reservoir<T> {
  private items: T[] = [];
  private seen = 0;

  constructor(
    private readonly random: Random,
    private readonly capacity: number,
  ) {}

  offer(item: T): void {
    this.seen++;
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < this.capacity) this.items[j] = item;
    }
  }

  drain(): T[] {
    const out = this.items;
    this.items = [];
    this.seen = 0;
    return out;
  }
}
