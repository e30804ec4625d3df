import type { XdsNack, XdsPoolView } from '../xds/clients.js';
import { SHORT, type TypeUrl } from '../xds/types.js';
import { involved, type OperatorContext } from './context.js';
import { nackSentence, shortDetail, type DataPlaneFacts, type NackFacts } from './data-plane-status.js';

export interface DataPlanesDeps {
  ctx: Pick<OperatorContext, 'pools' | 'events' | 'wallClock'>;
  /** Reconcile a pool again (its data planes' state changed). */
  enqueue: (key: string) => void;
}

/**
 * What the operator makes of the ADS server's feedback, per BackendPool: a client's refusal (NACK) is
 * a Warning event XdsRejected at once (the server counts it in sibyl_xds_rejected_total) and is kept,
 * with the time, until the client leaves; the pool's status (data-plane-status.ts) is then built from
 * the server's view of its clients and those refusals. Pools whose clients were not all in sync are
 * reconciled again when any client ACKs, so the condition clears without waiting for the next resync.
 */
export class DataPlanes {
  /** pool → client id → its last refusal of that pool's resources. */
  private readonly nacks = new Map<string, Map<string, NackFacts>>();
  private readonly unsynced = new Set<string>();

  constructor(private readonly d: DataPlanesDeps) {}

  nacked(n: XdsNack): void {
    const { ctx } = this.d;
    const facts: NackFacts = {
      type: SHORT[n.typeUrl as TypeUrl] ?? n.typeUrl,
      version: n.version,
      detail: shortDetail(n.detail),
      at: ctx.wallClock(),
    };
    let byClient = this.nacks.get(n.pool);
    if (!byClient) this.nacks.set(n.pool, (byClient = new Map()));
    byClient.set(n.client.id, facts);
    const pool = ctx.pools.store.get(n.pool);
    if (pool)
      void ctx.events.record(
        involved(pool),
        'Warning',
        'XdsRejected',
        nackSentence(n.client.kind, n.client.node, facts),
      );
    this.d.enqueue(n.pool);
  }

  /** A client ACKed something: the pools waiting for their clients to catch up are looked at again. */
  acked(): void {
    for (const k of this.unsynced) this.d.enqueue(k);
  }

  /** Clients connected or left: forget the refusals of those gone, and recount every pool. */
  clientsChanged(connected: Iterable<{ id: string }>): void {
    const ids = new Set([...connected].map((c) => c.id));
    for (const [pool, byClient] of this.nacks) {
      for (const id of byClient.keys()) if (!ids.has(id)) byClient.delete(id);
      if (byClient.size === 0) this.nacks.delete(pool);
    }
    for (const k of this.d.ctx.pools.store.keys()) this.d.enqueue(k);
  }

  forget(key: string): void {
    this.nacks.delete(key);
    this.unsynced.delete(key);
  }

  /**
   * The pool's data-plane facts from the server's view of it (undefined: the server does not hold the
   * pool). A client refuses the pool now when it has not ACKed the current resources and its last
   * refusal of them is of the version it was last sent of that type.
   */
  facts(key: string, view: XdsPoolView | undefined): DataPlaneFacts | undefined {
    if (!view) {
      this.unsynced.delete(key);
      return undefined;
    }
    const byClient = this.nacks.get(key);
    const clients = view.clients.map((c) => {
      const nack = byClient?.get(c.id);
      const acked: Record<string, string> = {};
      for (const [t, s] of Object.entries(c.types)) if (s.acked !== undefined) acked[t] = s.acked;
      const refused = !c.current && nack !== undefined && c.types[nack.type]?.sent === nack.version;
      return {
        node: c.node,
        kind: c.kind,
        acked,
        current: c.current,
        refused,
        ...(nack ? { lastNack: nack } : {}),
      };
    });
    if (clients.every((c) => c.current)) this.unsynced.delete(key);
    else this.unsynced.add(key);
    return {
      clients,
      weights: view.weights,
      stockPolicy: view.stockPolicy,
      ...(view.cache ? { cache: view.cache } : {}),
    };
  }
}
