import { canonicalJson } from '../util/canonical.js';
import type { RoutingDelta, RoutingSnapshot, WireModel, WirePool } from './messages.js';
import { isUrgent } from './urgency.js';

export interface RoutingChange {
  pool: string;
  urgent: boolean;
  version: number;
}

interface Entry {
  pool: WirePool;
  fingerprint: string;
  version: number; // routing version at which this pool last changed
}

/**
 * The operator's routing world: every pool as routers see it, each stamped with the routing version
 * at which it last changed. Updating a pool to what it already is changes nothing (level-based
 * callers may update freely). Sessions build deltas from the versions they have sent.
 */
export class RoutingState {
  private readonly pools = new Map<string, Entry>();
  private readonly removed = new Map<string, number>(); // pool → version of removal
  private current = 0;
  private modelEntry?: { model: WireModel; version: number };
  private readonly listeners = new Set<(c: RoutingChange) => void>();

  constructor(initialVersion = Date.now()) {
    // Versions start from the wall clock so a restarted operator never reuses a version a router holds.
    this.current = initialVersion;
  }

  get version(): number {
    return this.current;
  }

  onChange(fn: (c: RoutingChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Sets a pool (or removes it with undefined); returns the change, or undefined when nothing changed. */
  update(name: string, pool: WirePool | undefined): RoutingChange | undefined {
    const prev = this.pools.get(name);
    if (!pool) {
      if (!prev) return undefined;
      this.pools.delete(name);
      this.removed.set(name, ++this.current);
      return this.emit({ pool: name, urgent: true, version: this.current });
    }
    const fingerprint = canonicalJson(pool);
    if (prev && prev.fingerprint === fingerprint) return undefined;
    const urgent = isUrgent(prev?.pool, pool);
    this.pools.set(name, { pool, fingerprint, version: ++this.current });
    this.removed.delete(name);
    return this.emit({ pool: name, urgent, version: this.current });
  }

  setModel(model: WireModel): void {
    if (this.modelEntry?.model.version === model.version) return;
    this.modelEntry = { model, version: ++this.current };
    this.emit({ pool: '', urgent: false, version: this.current });
  }

  get model(): WireModel | undefined {
    return this.modelEntry?.model;
  }

  get(name: string): WirePool | undefined {
    return this.pools.get(name)?.pool;
  }

  names(): string[] {
    return [...this.pools.keys()];
  }

  /** Every pool the filter admits (a router serving one namespace sees only that namespace's pools). */
  snapshot(filter: (name: string) => boolean, reportIntervalMs: number): RoutingSnapshot {
    const pools = [...this.pools.entries()].filter(([n]) => filter(n)).map(([, e]) => e.pool);
    return { version: this.current, pools, model: this.modelEntry?.model ?? null, reportIntervalMs };
  }

  /** What changed after `since` among the pools the filter admits. */
  delta(since: number, filter: (name: string) => boolean, modelSent: string | undefined): RoutingDelta {
    const upserts: WirePool[] = [];
    for (const [n, e] of this.pools) if (e.version > since && filter(n)) upserts.push(e.pool);
    const removed: string[] = [];
    for (const [n, v] of this.removed) if (v > since && filter(n)) removed.push(n);
    const model =
      this.modelEntry && this.modelEntry.model.version !== modelSent ? this.modelEntry.model : null;
    return { version: this.current, baseVersion: since, upserts, removed, model };
  }

  private emit(c: RoutingChange): RoutingChange {
    for (const l of this.listeners) l(c);
    return c;
  }
}
