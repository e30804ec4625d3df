import * as grpc from '@grpc/grpc-js';
import type { EchoRequest } from '../../src/tools/backend/messages.js';
import { quantile } from '../../src/tools/sim/metrics.js';
import { clientStream, demoClient, echo, type DemoClient } from './grpc.js';

/**
 * Open-loop load (a steady arrival rate, not a fixed number of callers: a slow answer cannot slow the
 * arrivals and hide its own tail) of unary Echo calls through one or more routers, every outcome kept
 * with its status, latency, start time and a tag the caller chooses (a priority, a phase).
 */
export interface Outcome {
  code: number;
  latencyMs: number;
  /** performance.now() at the start. */
  atMs: number;
  tag: string;
  server?: string;
}

export interface CallShape {
  req?: EchoRequest;
  metadata?: Record<string, string>;
  tag?: string;
}

export interface LoadOptions {
  /** Router addresses; calls go round-robin over them. */
  targets: string[];
  rps: number;
  deadlineMs: number;
  /** The i-th call's request, metadata and tag (default: an empty Echo). */
  shape?: (i: number) => CallShape;
  /** Echo (unary, the default) or ClientStream with the one request (a streaming call: never hedged). */
  method?: 'Echo' | 'ClientStream';
  /** Channels per target (grpc-js multiplexes a channel's calls over one connection). */
  channelsPerTarget?: number;
}

export class Load {
  readonly outcomes: Outcome[] = [];
  private readonly clients: DemoClient[] = [];
  private timer?: NodeJS.Timeout;
  /** Calls in flight, with when each started (performance.now()). */
  private inflight = new Map<Promise<void>, number>();
  private sent = 0;

  constructor(private readonly o: LoadOptions) {
    for (const t of o.targets)
      for (let i = 0; i < (o.channelsPerTarget ?? 1); i++)
        this.clients.push(demoClient(t, { 'grpc.use_local_subchannel_pool': 1 }));
  }

  start(): this {
    let last = performance.now();
    let owed = 0;
    this.timer = setInterval(() => {
      const now = performance.now();
      owed += ((now - last) / 1000) * this.o.rps;
      last = now;
      for (; owed >= 1; owed--) this.call();
    }, 5);
    return this;
  }

  private call(): void {
    const i = this.sent++;
    const s = this.o.shape?.(i) ?? {};
    const client = this.clients[i % this.clients.length] as DemoClient;
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(s.metadata ?? {})) md.set(k, v);
    const atMs = performance.now();
    const opts = { metadata: md, deadlineMs: this.o.deadlineMs };
    const sent =
      this.o.method === 'ClientStream'
        ? clientStream(client, [s.req ?? {}], opts).then((r) => ({
            status: r.status,
            server: r.response?.server,
          }))
        : echo(client, s.req ?? {}, opts).then((r) => ({ status: r.status, server: r.response?.server }));
    const p = sent.then((r) => {
      this.outcomes.push({
        code: r.status.code,
        latencyMs: performance.now() - atMs,
        atMs,
        tag: s.tag ?? '',
        ...(r.server ? { server: r.server } : {}),
      });
    });
    this.inflight.set(p, atMs);
    void p.finally(() => this.inflight.delete(p));
  }

  /**
   * Calls answered (any status) that started at or after `sinceMs` (performance.now()), optionally only
   * those a given backend served: a phase of a case lasts until enough calls have passed through it,
   * not for a fixed time.
   */
  answered(sinceMs = 0, server?: string): number {
    let n = 0;
    for (const o of this.outcomes)
      if (o.atMs >= sinceMs && (server === undefined || o.server === server)) n++;
    return n;
  }

  /** Calls still in flight that started before `ms` (performance.now()). */
  pendingBefore(ms: number): number {
    let n = 0;
    for (const at of this.inflight.values()) if (at < ms) n++;
    return n;
  }

  /** Stops sending and waits for every call in flight to end. */
  async stop(): Promise<this> {
    clearInterval(this.timer);
    await Promise.all([...this.inflight.keys()]);
    return this;
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.close();
  }
}

export interface Summary {
  calls: number;
  ok: number;
  failed: number;
  successRate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Status name → count. */
  codes: Record<string, number>;
}

export function summarize(outcomes: readonly Outcome[]): Summary {
  const lat = outcomes.map((o) => o.latencyMs).sort((a, b) => a - b);
  const ok = outcomes.filter((o) => o.code === grpc.status.OK).length;
  const codes: Record<string, number> = {};
  for (const o of outcomes) {
    const name = grpc.status[o.code] ?? String(o.code);
    codes[name] = (codes[name] ?? 0) + 1;
  }
  return {
    calls: outcomes.length,
    ok,
    failed: outcomes.length - ok,
    successRate: outcomes.length ? ok / outcomes.length : 0,
    p50Ms: lat.length ? quantile(lat, 0.5) : 0,
    p99Ms: lat.length ? quantile(lat, 0.99) : 0,
    maxMs: lat.length ? (lat[lat.length - 1] as number) : 0,
    codes,
  };
}

/** "OK 1200, UNAVAILABLE 3" */
export function formatCodes(codes: Record<string, number>): string {
  return Object.entries(codes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** Sums the samples of one Prometheus series whose labels include all of `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const got = m[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => got.includes(`${k}="${v}"`))) sum += Number(m[2]);
  }
  return sum;
}

/**
 * The q-quantile of a Prometheus histogram as the upper bound of the first bucket holding it (so an
 * upper estimate, as precise as the buckets), over the series whose labels include `labels`;
 * undefined with no observations.
 */
export function histogramQuantile(
  text: string,
  name: string,
  q: number,
  labels: Record<string, string> = {},
): number | undefined {
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const m = /\{(.*)\}\s+(\S+)/.exec(line);
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (!m || le === undefined) continue;
    if (!Object.entries(labels).every(([k, v]) => (m[1] ?? '').includes(`${k}="${v}"`))) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(m[2]));
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  return sorted.find(([, cumulative]) => cumulative >= q * total)?.[0];
}

export async function scrape(addr: string): Promise<string> {
  const r = await fetch(`http://${addr}/metrics`);
  if (!r.ok) throw new Error(`GET http://${addr}/metrics: ${r.status}`);
  return r.text();
}
