import { ManualClock, seededRandom, type Random } from '../../../src/util/clock.js';
import {
  createBalancer,
  type Balancer,
  type Endpoint,
  type PickRequest,
} from '../../../src/balancer/index.js';

/**
 * A small discrete-event bench for balancer tests: open-loop Poisson arrivals, servers that run
 * `concurrency` calls at once and queue the rest (FIFO), log-normal service noise (σ 0.3), servers that
 * fail fast without using a slot. The router's bookkeeping (inflight, oldest open call) is done as the
 * router does it, around the policy's hooks. Deterministic for a given seed.
 */
export interface ServerSpec {
  serviceMs: number;
  concurrency?: number; // default 2
  failFast?: boolean; // answer every call with an error after 1 ms
}

export interface Change {
  atCall: number; // before this call number is picked
  remove?: string;
  add?: { id: string; spec: ServerSpec };
}

export interface RunOptions {
  policy: string;
  options?: Record<string, unknown>;
  servers: ServerSpec[];
  calls: number;
  /** Load as a share of the pool's capacity (fast servers only count); default 0.6. */
  utilization?: number;
  seed?: number;
  changes?: Change[];
  req?: PickRequest;
}

export interface RunResult {
  picks: string[];
  /** calls picked per endpoint id, over all calls and over the last half */
  share: Record<string, number>;
  lateShare: Record<string, number>;
  errors: number;
  meanLatencyMs: number;
}

interface Server {
  ep: Endpoint;
  spec: ServerSpec;
  busy: number;
  queue: Call[];
  open: Set<Call>;
}

interface Call {
  server: Server;
  startMs: number;
  endMs: number;
  ok: boolean;
}

/** Binary min-heap of calls by end time (ties by insertion order). */
class Heap {
  private a: Array<{ t: number; seq: number; call: Call }> = [];
  private seq = 0;
  get size(): number {
    return this.a.length;
  }
  peek(): number {
    return this.a[0]?.t ?? Infinity;
  }
  push(t: number, call: Call): void {
    const a = this.a;
    a.push({ t, seq: this.seq++, call });
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Call {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top.call;
  }
}
function less(x: { t: number; seq: number }, y: { t: number; seq: number }): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq);
}

function lognormal(random: Random, sigma: number): number {
  const u = Math.max(1e-12, random());
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  return Math.exp(sigma * z - (sigma * sigma) / 2);
}

export function endpoint(id: string): Endpoint {
  return { id, address: id, inflight: 0 };
}

export function run(o: RunOptions): RunResult {
  const seed = o.seed ?? 1;
  const clock = new ManualClock(0);
  const world = seededRandom(seed * 7919 + 13);
  const balancer: Balancer = createBalancer(o.policy, { clock, random: seededRandom(seed) }, o.options);
  const req: PickRequest = o.req ?? { method: '/test.Svc/Get', payloadBytes: 512 };
  const servers = new Map<string, Server>();
  const add = (id: string, spec: ServerSpec): void => {
    servers.set(id, { ep: endpoint(id), spec, busy: 0, queue: [], open: new Set() });
  };
  o.servers.forEach((spec, i) => add(`ep-${i}`, spec));
  const capacityPerMs = o.servers
    .filter((s) => !s.failFast)
    .reduce((sum, s) => sum + (s.concurrency ?? 2) / s.serviceMs, 0);
  const meanGapMs = 1 / (capacityPerMs * (o.utilization ?? 0.6));

  const ends = new Heap();
  let latencySum = 0;
  const refreshOldest = (s: Server): void => {
    let oldest: number | undefined;
    for (const c of s.open) if (oldest === undefined || c.startMs < oldest) oldest = c.startMs;
    s.ep.oldestInflightStartMs = oldest;
  };
  const startService = (c: Call, now: number): void => {
    c.server.busy++;
    c.endMs = now + c.server.spec.serviceMs * lognormal(world, 0.3);
    ends.push(c.endMs, c);
  };
  const finish = (c: Call): void => {
    const s = c.server;
    clock.set(c.endMs);
    if (c.ok) {
      s.busy--;
      const next = s.queue.shift();
      if (next) startService(next, c.endMs);
    }
    latencySum += c.endMs - c.startMs;
    s.open.delete(c);
    s.ep.inflight--;
    refreshOldest(s);
    balancer.onCallEnded(s.ep, req, {
      ok: c.ok,
      code: c.ok ? 0 : 14,
      latencyMs: c.endMs - c.startMs,
      startedAtMs: c.startMs,
    });
  };

  const picks: string[] = [];
  let errors = 0;
  let t = 0;
  for (let n = 0; n < o.calls; n++) {
    for (const ch of o.changes ?? []) {
      if (ch.atCall !== n) continue;
      if (ch.remove) {
        servers.delete(ch.remove);
        balancer.onEndpointRemoved?.(ch.remove);
      }
      if (ch.add) add(ch.add.id, ch.add.spec);
    }
    t += -Math.log(Math.max(1e-12, world())) * meanGapMs;
    while (ends.size > 0 && ends.peek() <= t) finish(ends.pop());
    clock.set(t);
    const candidates = [...servers.values()].map((s) => s.ep);
    const ep = balancer.pick(candidates, req);
    if (!candidates.includes(ep)) throw new Error(`${o.policy} picked ${ep.id}, not a candidate`);
    const s = servers.get(ep.id)!;
    picks.push(ep.id);
    const call: Call = { server: s, startMs: t, endMs: t, ok: !s.spec.failFast };
    s.ep.inflight++;
    s.open.add(call);
    refreshOldest(s);
    balancer.onCallStarted?.(s.ep, req);
    if (!call.ok) {
      call.endMs = t + 1;
      ends.push(call.endMs, call);
      errors++;
    } else if (s.busy < (s.spec.concurrency ?? 2)) startService(call, t);
    else s.queue.push(call);
  }
  while (ends.size > 0) finish(ends.pop());
  const share: Record<string, number> = {};
  const lateShare: Record<string, number> = {};
  picks.forEach((id, i) => {
    share[id] = (share[id] ?? 0) + 1 / picks.length;
    if (i >= picks.length / 2) lateShare[id] = (lateShare[id] ?? 0) + 2 / picks.length;
  });
  return { picks, share, lateShare, errors, meanLatencyMs: latencySum / Math.max(1, picks.length) };
}
