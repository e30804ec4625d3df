/**
 * The simulator's pending events: a binary min-heap on (time, insertion order), so events due at the
 * same instant run in the order they were scheduled and a run is reproducible. Events live in
 * preallocated parallel arrays (time, order, kind, integer argument, object argument) reused through a
 * free list; the heap holds slot numbers. Scheduling and popping allocate nothing once the arrays have
 * grown to the run's peak.
 *
 * `pop()` moves the earliest event into `time`, `kind`, `arg` and `obj` and frees its slot.
 */
export class EventQueue<T> {
  time = 0;
  kind = 0;
  arg = 0;
  obj: T | undefined;

  private cap: number;
  private heap: Int32Array;
  private size = 0;
  private at: Float64Array;
  private order: Float64Array;
  private kinds: Uint8Array;
  private args: Float64Array;
  private objs: (T | undefined)[];
  private free: Int32Array;
  private freeCount: number;
  private seq = 0;

  constructor(initialCapacity = 1024) {
    this.cap = Math.max(16, initialCapacity);
    this.heap = new Int32Array(this.cap);
    this.at = new Float64Array(this.cap);
    this.order = new Float64Array(this.cap);
    this.kinds = new Uint8Array(this.cap);
    this.args = new Float64Array(this.cap);
    this.objs = new Array<T | undefined>(this.cap).fill(undefined);
    this.free = new Int32Array(this.cap);
    for (let i = 0; i < this.cap; i++) this.free[i] = this.cap - 1 - i;
    this.freeCount = this.cap;
  }

  get length(): number {
    return this.size;
  }

  /** Time of the earliest event, or Infinity when none. */
  peekTime(): number {
    return this.size > 0 ? (this.at[this.heap[0] as number] as number) : Infinity;
  }

  push(time: number, kind: number, obj?: T, arg = 0): void {
    if (this.freeCount === 0) this.grow();
    const slot = this.free[--this.freeCount] as number;
    this.at[slot] = time;
    this.order[slot] = this.seq++;
    this.kinds[slot] = kind;
    this.args[slot] = arg;
    this.objs[slot] = obj;
    let i = this.size++;
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as number;
      if (!this.less(slot, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = slot;
  }

  /** Takes the earliest event into time/kind/arg/obj; false when there is none. */
  pop(): boolean {
    if (this.size === 0) return false;
    const heap = this.heap;
    const top = heap[0] as number;
    this.time = this.at[top] as number;
    this.kind = this.kinds[top] as number;
    this.arg = this.args[top] as number;
    this.obj = this.objs[top];
    this.objs[top] = undefined;
    this.free[this.freeCount++] = top;
    const last = heap[--this.size] as number;
    const n = this.size;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.less(heap[r] as number, heap[l] as number)) c = r;
      const cs = heap[c] as number;
      if (!this.less(cs, last)) break;
      heap[i] = cs;
      i = c;
    }
    if (n > 0) heap[i] = last;
    return true;
  }

  private less(a: number, b: number): boolean {
    const ta = this.at[a] as number;
    const tb = this.at[b] as number;
    return ta < tb || (ta === tb && (this.order[a] as number) < (this.order[b] as number));
  }

  private grow(): void {
    const old = this.cap;
    const cap = old * 2;
    const heap = new Int32Array(cap);
    heap.set(this.heap);
    this.heap = heap;
    const at = new Float64Array(cap);
    at.set(this.at);
    this.at = at;
    const order = new Float64Array(cap);
    order.set(this.order);
    this.order = order;
    const kinds = new Uint8Array(cap);
    kinds.set(this.kinds);
    this.kinds = kinds;
    const args = new Float64Array(cap);
    args.set(this.args);
    this.args = args;
    this.objs.length = cap;
    this.objs.fill(undefined, old);
    const free = new Int32Array(cap);
    for (let i = 0; i < cap - old; i++) free[i] = cap - 1 - i;
    this.free = free;
    this.freeCount = cap - old;
    this.cap = cap;
  }
}
