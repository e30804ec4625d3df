import { resourceName } from '../../xds/types.js';
import { AdsClient, type EdsArrival } from './ads-client.js';
import { watchUsage } from './proc-usage.js';
import { accepts, poll } from './processes.js';
import { NAMESPACE } from './scale-cluster.js';

export interface XdsScaleResult {
  clients: number;
  poolsPerClient: number;
  subscriptions: number;
  subscribersPerPool: { min: number; max: number };
  /** From the clients' start to every one holding every pool it dials, fully ready. */
  syncMs: number;
  /** The operator's CPU share of one core with the clients connected and nothing changing. */
  idleCpuShare: number;
  changes: number;
  observed: number;
  delayMs: { p50: number; p99: number; max: number };
  targetP99Ms: number;
}

/** Issue 16: p99 from an EndpointSlice change to every client acknowledging it. */
const TARGET_P99_MS = 1000;
/** How long the operator's CPU is measured with the clients connected and nothing changing. */
const IDLE_WINDOW_MS = 10_000;

/**
 * Connects the clients to the operator's ADS (process `pid`, serving on `address`), waits until each
 * holds every pool it dials with all `endpoints` ready, then measures the operator's CPU while nothing
 * changes.
 */
export async function connectFleet(o: {
  pid: number;
  address: string;
  clients: number;
  poolsPerClient: number;
  pools: readonly string[];
  endpoints: number;
}): Promise<{ fleet: XdsFleet; result: Omit<XdsScaleResult, 'changes' | 'observed' | 'delayMs'> }> {
  await poll(() => accepts(o.address), 'the operator to serve its control API', 30_000);
  const t0 = performance.now();
  const fleet = new XdsFleet(o.address, o.clients, o.poolsPerClient, o.pools);
  try {
    await poll(
      () => {
        const failed = fleet.failures();
        if (failed.length) throw new Error(`xDS clients failed: ${failed.join('; ')}`);
        return fleet.synced(() => o.endpoints);
      },
      'every xDS client to hold its pools',
      600_000,
      200,
    );
    const syncMs = performance.now() - t0;
    const idle = watchUsage(o.pid);
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const { subscriptions, min, max } = fleet.spread();
    return {
      fleet,
      result: {
        clients: o.clients,
        poolsPerClient: Math.min(o.poolsPerClient, o.pools.length),
        subscriptions,
        subscribersPerPool: { min, max },
        syncMs,
        idleCpuShare: idle.stop().cpuShare,
        targetP99Ms: TARGET_P99_MS,
      },
    };
  } catch (e) {
    fleet.close();
    throw e;
  }
}

/** One EndpointSlice change awaited on the xDS side: every subscriber must ACK an assignment showing it. */
interface Waiter {
  readonly want: number;
  readonly t0: number;
  readonly pending: Set<number>;
  readonly done: () => void;
}

/**
 * `sibyl bench scale`'s xDS side: `clients` simulated proxyless gRPC clients (ads-client.ts) on the
 * operator's ADS server, client i dialling `perClient` consecutive pools from pool i × perClient (mod
 * the pool count), so every pool has clients × perClient / pools subscribers, give or take one. For
 * each slice change it records the delay until the last subscriber acknowledged a
 * ClusterLoadAssignment with the new count of usable endpoints.
 */
export class XdsFleet {
  readonly delays: number[] = [];
  private readonly clients: AdsClient[] = [];
  private readonly subscribers = new Map<string, number[]>();
  private readonly waiters = new Map<string, Waiter>();

  constructor(
    address: string,
    clients: number,
    perClient: number,
    pools: readonly string[],
    private readonly namespace = NAMESPACE,
  ) {
    const k = Math.min(perClient, pools.length);
    for (let i = 0; i < clients; i++) {
      const mine = Array.from({ length: k }, (_, j) =>
        resourceName(`${this.namespace}/${pools[(i * k + j) % pools.length]}`),
      );
      for (const n of mine) this.subscribers.set(n, [...(this.subscribers.get(n) ?? []), i]);
      const node = { id: `bench-${i}`, cluster: 'bench', user_agent_name: 'gRPC sibyl-bench' };
      this.clients.push(new AdsClient(address, node, mine, (a) => this.arrived(i, a)));
    }
  }

  /** Subscriptions in all, and the fewest and most subscribers a pool has. */
  spread(): { subscriptions: number; min: number; max: number } {
    const counts = [...this.subscribers.values()].map((s) => s.length);
    return {
      subscriptions: counts.reduce((a, b) => a + b, 0),
      min: Math.min(...counts),
      max: Math.max(...counts),
    };
  }

  /** Whether every client has acknowledged each pool it dials with `usable` endpoints. */
  synced(usable: (pool: string) => number): boolean {
    return [...this.subscribers].every(([name, ids]) =>
      ids.every((i) => this.clients[i]?.usable(name) === usable(name)),
    );
  }

  /** Clients whose stream failed, or that refused a response (the figures would then be void). */
  failures(): string[] {
    return this.clients.flatMap((c, i) =>
      c.error || c.nacks ? [`bench-${i}: ${c.error ?? `${c.nacks} refusals`}`] : [],
    );
  }

  /**
   * A change to `pool` made at `t0` that leaves `usable` endpoints usable: resolves once every
   * subscriber acknowledged an assignment showing it (its delay recorded), when dropped (the pool
   * changed again first), or after `timeoutMs` (not observed).
   */
  expect(pool: string, usable: number, t0: number, timeoutMs = 60_000): Promise<void> {
    const name = resourceName(`${this.namespace}/${pool}`);
    const ids = this.subscribers.get(name) ?? [];
    this.drop(name);
    if (ids.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.drop(name), timeoutMs);
      const done = () => (clearTimeout(timer), resolve());
      this.waiters.set(name, { want: usable, t0, pending: new Set(ids), done });
    });
  }

  /** Whether a change to `pool` is still awaited. */
  awaiting(pool: string): boolean {
    return this.waiters.has(resourceName(`${this.namespace}/${pool}`));
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  private drop(name: string): void {
    this.waiters.get(name)?.done();
    this.waiters.delete(name);
  }

  private arrived(client: number, a: EdsArrival): void {
    const w = this.waiters.get(a.cluster);
    if (!w || a.usable !== w.want || a.atMs < w.t0) return;
    w.pending.delete(client);
    if (w.pending.size > 0) return;
    this.waiters.delete(a.cluster);
    this.delays.push(a.atMs - w.t0);
    w.done();
  }
}
