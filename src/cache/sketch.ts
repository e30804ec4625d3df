import { SibylError } from '../util/errors.js';
import { TopK } from './topk.js';

/**
 * A time-decayed count-min sketch (Cormode & Muthukrishnan, "An improved data stream summary: the
 * count-min sketch and its applications", J. Algorithms 55(1), 2005) with conservative update (Estan &
 * Varghese, "New directions in traffic measurement and accounting", SIGCOMM 2002), plus the top-K keys
 * by its estimate (topk.ts): what the cache warmer reads as "the next window's hot set", and what L1's
 * TinyLFU admission asks "is the newcomer more popular than the victim?".
 *
 * Counts decay with a half-life (`halfLifeMs`, the warming spec's window): a call `a` ms ago weighs
 * 2^(−a/halfLife). Instead of halving every counter once per window (TinyLFU's "reset", Einziger et al.
 * 2017), this uses forward decay (Cormode, Shkapenyuk, Srivastava & Xu, "Forward decay: a practical time
 * decay model for streaming systems", ICDE 2009): an add at time t adds g(t) = 2^((t − L)/halfLife) for
 * a landmark L, and an estimate is divided by g(now). Every stored count decays at the same rate, so
 * adds and estimates stay O(depth), nothing is swept on a timer, and the order of the top-K's stored
 * counts never changes with time alone. When g grows large the counters are divided down and the
 * landmark moved (renormalise), the same factor applied to the top-K.
 *
 * Error (count-min, non-negative increments): for every key, true ≤ estimate, and with probability at
 * least 1 − δ, estimate ≤ true + ε·N, where N is the decayed total of all adds, ε = e / width and
 * δ = e^(−depth). Conservative update only lowers estimates, never below the true count. Decay is
 * linear (each add is scaled by a weight), so both bounds hold for the decayed counts.
 */
export interface SketchOptions {
  /** Counters per row; rounded up to a power of two. Larger: smaller error (ε = e / width). */
  width: number;
  /** Rows (independent hashes). δ = e^(−depth). Default 4. */
  depth?: number;
  /** A count halves every halfLifeMs. */
  halfLifeMs: number;
  /** Monotonic ms. */
  now: () => number;
}

/** Renormalise once the forward-decay weight reaches 2^this (Float32 counters stay far from overflow). */
const RENORMALISE_EXPONENT = 20;

export class DecayedCountMin {
  readonly width: number;
  readonly depth: number;
  private readonly mask: number;
  private readonly counts: Float32Array;
  private readonly halfLifeMs: number;
  private readonly now: () => number;
  private landmarkMs: number;
  /** The decayed total of all adds, in the landmark's units. */
  private total = 0;
  /** Told of each renormalisation's divisor (the top-K divides its stored counts by it too). */
  onRenormalise: ((divisor: number) => void) | undefined;
  private readonly index: Int32Array;

  constructor(opts: SketchOptions) {
    if (!(opts.width >= 1) || !(opts.halfLifeMs > 0))
      throw new SibylError('ERR_CONFIG_INVALID', 'sketch needs width ≥ 1 and halfLifeMs > 0');
    this.width = 2 ** Math.ceil(Math.log2(Math.max(16, opts.width)));
    this.mask = this.width - 1;
    this.depth = Math.max(1, Math.min(16, opts.depth ?? 4));
    this.counts = new Float32Array(this.width * this.depth);
    this.index = new Int32Array(this.depth);
    this.halfLifeMs = opts.halfLifeMs;
    this.now = opts.now;
    this.landmarkMs = opts.now();
  }

  /** ε of the error bound (estimate ≤ true + ε·N with probability 1 − δ). */
  get epsilon(): number {
    return Math.E / this.width;
  }

  /** δ of the error bound. */
  get delta(): number {
    return Math.exp(-this.depth);
  }

  /** Adds `count` (default 1) for `key` now; returns the key's new estimate in stored units (see raw). */
  add(key: string, count = 1): number {
    const w = count * this.weight();
    this.locate(key);
    let min = Infinity;
    for (let i = 0; i < this.depth; i++) min = Math.min(min, this.counts[this.index[i] as number] as number);
    const v = min + w;
    // Conservative update: raise each counter only as far as the new minimum needs.
    for (let i = 0; i < this.depth; i++) {
      const j = this.index[i] as number;
      if ((this.counts[j] as number) < v) this.counts[j] = v;
    }
    this.total += w;
    return v;
  }

  /** The key's decayed count now: calls weighted 2^(−age/halfLife). */
  estimate(key: string): number {
    return this.raw(key) / this.scaleNow();
  }

  /** The key's count in stored units (constant while no add touches it; divide by scaleNow()). */
  raw(key: string): number {
    this.locate(key);
    let min = Infinity;
    for (let i = 0; i < this.depth; i++) min = Math.min(min, this.counts[this.index[i] as number] as number);
    return min;
  }

  /** Stored units per decayed count now. */
  scaleNow(): number {
    return 2 ** ((this.now() - this.landmarkMs) / this.halfLifeMs);
  }

  /** N: the decayed total of every add. */
  totalCount(): number {
    return this.total / this.scaleNow();
  }

  /** The forward-decay weight of an add now, renormalising first when it has grown large. */
  private weight(): number {
    const exp = (this.now() - this.landmarkMs) / this.halfLifeMs;
    if (exp < RENORMALISE_EXPONENT) return 2 ** exp;
    const divisor = 2 ** exp;
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = (this.counts[i] as number) / divisor;
    this.total /= divisor;
    this.landmarkMs = this.now();
    this.onRenormalise?.(divisor);
    return 1;
  }

  /** Fills `index` with the key's counter in each row: double hashing (Kirsch & Mitzenmacher 2006). */
  private locate(key: string): void {
    const h1 = fnv1a(key, 0x811c9dc5);
    const h2 = fnv1a(key, 0x01000193 ^ 0x5bd1e995) | 1;
    for (let i = 0; i < this.depth; i++)
      this.index[i] = i * this.width + ((h1 + Math.imul(i, h2)) & this.mask);
  }
}

/** 32-bit FNV-1a over UTF-16 code units from `basis`, with a murmur3 finaliser to spread the low bits. */
function fnv1a(s: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export interface HotSetOptions extends SketchOptions {
  /** Keys the hot set holds. */
  topK: number;
}

/**
 * The sketch and its top-K together: every record() counts a key and offers it to the top-K with its
 * new estimate (the count-min + heap heavy-hitters method, Cormode & Muthukrishnan 2005 §5.1). The
 * top-K's counts are those estimates at each key's last record (a lower bound of its count now, since
 * estimates only grow between decays, and all decay alike), so the heap needs no sweep. What it
 * predicts: the keys most called in the recent past, weighted toward the last window, are the ones
 * called next (the popularity of a key drifts slower than the window).
 */
export class HotSet {
  readonly sketch: DecayedCountMin;
  readonly top: TopK;

  constructor(opts: HotSetOptions) {
    this.sketch = new DecayedCountMin(opts);
    this.top = new TopK(opts.topK);
    this.sketch.onRenormalise = (d) => this.top.rescale(1 / d);
  }

  /**
   * Counts one call of `key`. Returns whether the key is in the top-K after it, and the key it pushed
   * out, if any.
   */
  record(key: string, count = 1): { hot: boolean; evicted?: string } {
    const raw = this.sketch.add(key, count);
    return this.top.offer(key, raw);
  }

  estimate(key: string): number {
    return this.sketch.estimate(key);
  }

  isHot(key: string): boolean {
    return this.top.has(key);
  }

  /** The hot set now, most popular first, with each key's decayed count now. */
  hot(): Array<{ key: string; estimate: number }> {
    const s = this.sketch.scaleNow();
    return this.top.sorted().map((e) => ({ key: e.key, estimate: e.value / s }));
  }
}
