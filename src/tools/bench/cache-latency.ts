import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { demoClientConstructor } from '../backend/proto.js';
import { quantile } from '../sim/metrics.js';
import { SibylError } from '../../util/errors.js';
import { startRedisServer, type RedisServer } from '../../util/redis-server.js';
import { startBenchBackend, startRouterWithPools, stop, type Child } from './processes.js';

/**
 * Latency per cache tier through the real router (`sibyl bench cache`): a `sibyl backend` with a set
 * service time, `sibyl router` processes with a routes-file cache (L1, L2 on a Redis, L3 in a temp
 * folder), and a grpc-js client on loopback making one call at a time.
 *
 *  - miss: a new request each call (every tier misses; the backend answers, the tiers are filled);
 *  - L1 hit: the same requests again on that router;
 *  - L2 hit: a second router of the same pool (the same Redis keys) whose L1 holds one entry and which
 *    has no L3, calling the requests the first one filled in turn: each misses L1 and hits L2;
 *  - L3 hit: a third router with the first one's L3 folder (read after the first has stopped), an L1 of
 *    one entry and no L2: each call misses L1 and hits L3.
 * Every phase is checked against the router's own counters (sibyl_cache_requests_total): a phase whose
 * calls were not the hits it claims to measure fails the benchmark instead of printing figures.
 */
export interface LatencyOptions {
  /** Calls measured per phase. */
  calls: number;
  /** Calls made before measuring, per router (JIT warm-up); not counted. */
  warmup: number;
  /** The backend's service time, ms. */
  backendLatencyMs: number;
  responseBytes: number;
  /** An existing Redis; absent: a redis-server from PATH on a free port. */
  redisUrl?: string;
  log?: (line: string) => void;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

export interface TierLatency {
  l1: Percentiles;
  l2: Percentiles;
  l3: Percentiles;
  miss: Percentiles;
}

export const ECHO = '/sibyl.demo.v1.Demo/Echo';
export const POOL = 'bench-cache';

/**
 * The tiers' figures (grpc-js client), and references: each client calling a backend that answers at
 * once, directly, and the L1 hit measured again with a minimal HTTP/2 gRPC client (node:http2, one
 * connection, hand-encoded request), which takes most of grpc-js's own cost out of the figure.
 */
export interface LatencyResult {
  tiers: TierLatency;
  direct: Percentiles;
  minimal: { direct: Percentiles; l1: Percentiles };
}

export async function measureTierLatency(o: LatencyOptions): Promise<LatencyResult> {
  const say = o.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-bench-cache-'));
  const children: Child[] = [];
  let redis: RedisServer | undefined;
  /** Every process started here is stopped at the end. */
  const kept = <T extends { child: Child }>(s: T): T => {
    children.push(s.child);
    return s;
  };
  try {
    let redisUrl = o.redisUrl;
    if (!redisUrl) {
      redis = await startRedisServer();
      redisUrl = redis.url;
    }
    const run = randomUUID().slice(0, 8);
    const request = (i: number) => ({ message: `${run}-${i}`, responseSize: o.responseBytes });
    const n = o.calls;
    const backendWith = async (name: string, latencyMs: number) =>
      kept(await startBenchBackend(name, latencyMs));
    /** A grpc-js caller on `address`, warmed up with o.warmup calls, for `body`; closed afterwards. */
    const warmCaller = async <T>(address: string, body: (c: Caller) => Promise<T>): Promise<T> => {
      const c = new Caller(address);
      try {
        for (let i = 0; i < o.warmup; i++)
          await c.echo({ message: `${run}-warm-${i}`, responseSize: o.responseBytes });
        return await body(c);
      } finally {
        c.close();
      }
    };
    const backend = await backendWith('backend', o.backendLatencyMs);
    // The floor: this client straight to a backend with no service time (no router).
    say('  reference: the client straight to a backend that answers at once');
    const instant = await backendWith('instant backend', 0);
    const direct = await warmCaller(instant.listening, (c) => c.timed(n, request));
    const m0 = new H2Caller(instant.listening);
    let minimalDirect: number[];
    try {
      await m0.timed(o.warmup, (i) => ({ message: `${run}-warm-${i}`, responseSize: o.responseBytes }));
      minimalDirect = await m0.timed(n, request);
    } finally {
      m0.close();
    }
    await stop(instant.child);
    const l3Path = path.join(dir, 'l3');
    const routerWith = async (name: string, cache: Record<string, unknown>) => {
      const config = path.join(dir, `${name}.json`);
      const pool = {
        name: POOL,
        match: { services: ['sibyl.demo.v1.Demo'] },
        endpoints: [{ address: backend.listening }],
        balancing: { policy: 'RoundRobin' },
        cache: { methods: [{ method: ECHO, ttl: '1h' }], ...cache },
      };
      return kept(await startRouterWithPools(name, config, [pool], '127.0.0.1:0'));
    };
    // Router 1: L1 + L2 + L3. Misses fill every tier; then L1 hits.
    say('  router with L1 + L2 + L3: misses, then L1 hits');
    const full = await routerWith('full', {
      l1: { maxEntries: 100_000 },
      l2: { redis: { url: redisUrl }, timeout: '200ms' },
      l3: { path: l3Path },
    });
    const [miss, l1] = await warmCaller(full.listening, async (c) => [
      await checked(full.metrics, 'l1', { hit: 0, miss: n }, 'the miss phase', () => c.timed(n, request)),
      await checked(full.metrics, 'l1', { hit: n, miss: 0 }, 'the L1 phase', () => c.timed(n, request)),
    ]);
    const m1 = new H2Caller(full.listening);
    let minimalL1: number[];
    try {
      await m1.timed(o.warmup, request);
      minimalL1 = await checked(
        full.metrics,
        'l1',
        { hit: n, miss: 0 },
        'the L1 phase (minimal client)',
        () => m1.timed(n, request),
      );
    } finally {
      m1.close();
    }
    await stop(full.child);

    // Router 2: an L1 of one entry, L2 only: the requests in turn, each an L1 miss and an L2 hit.
    say('  router with a one-entry L1 and L2: L2 hits');
    const viaL2 = await routerWith('l2', {
      l1: { maxEntries: 1 },
      l2: { redis: { url: redisUrl }, timeout: '200ms' },
    });
    const l2 = await warmCaller(viaL2.listening, (c) =>
      checked(viaL2.metrics, 'l2', { hit: n, miss: 0 }, 'the L2 phase', () => c.timed(n, request)),
    );
    await stop(viaL2.child);

    // Router 3: an L1 of one entry, L3 only (the first router's folder): L3 hits.
    say('  router with a one-entry L1 and the first router’s L3: L3 hits');
    const viaL3 = await routerWith('l3', { l1: { maxEntries: 1 }, l3: { path: l3Path } });
    const l3 = await warmCaller(viaL3.listening, (c) =>
      checked(viaL3.metrics, 'l3', { hit: n, miss: 0 }, 'the L3 phase', () => c.timed(n, request)),
    );
    const stopped = new Set(['full', 'l2', 'instant backend']);
    const dead = children.filter((c) => c.proc.exitCode !== null && !stopped.has(c.name));
    if (dead.length)
      throw new Error(
        `stopped during the runs, so the figures are void: ${dead.map((c) => c.name).join(', ')}`,
      );
    return {
      tiers: { l1: pct(l1), l2: pct(l2), l3: pct(l3), miss: pct(miss) },
      direct: pct(direct),
      minimal: { direct: pct(minimalDirect), l1: pct(minimalL1) },
    };
  } finally {
    await Promise.all([...children.map(stop), redis?.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

export function pct(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
}

/** One grpc-js client, one call at a time, each timed from the call to its callback. */
export class Caller {
  private readonly client: grpc.Client & {
    echo(req: object, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
  };

  constructor(address: string) {
    const C = demoClientConstructor();
    this.client = new C(address, grpc.credentials.createInsecure()) as unknown as Caller['client'];
  }

  echo(req: object): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.echo(req, (err) => (err ? reject(new Error(`Echo failed: ${err.message}`)) : resolve())),
    );
  }

  timed(n: number, request: (i: number) => object): Promise<number[]> {
    return timedCalls(n, request, (req) => this.echo(req));
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A minimal gRPC client on node:http2: one connection, a hand-encoded EchoRequest (message = field 6,
 * response_size = field 2), and the call done when the response stream ends with grpc-status 0.
 */
class H2Caller {
  private readonly session: http2.ClientHttp2Session;

  constructor(address: string) {
    this.session = http2.connect(`http://${address}`);
    this.session.on('error', () => undefined); // each call reports its own failure
  }

  echo(req: { message: string; responseSize: number }): Promise<void> {
    const msg = Buffer.from(req.message, 'utf8');
    const body = Buffer.concat([
      Buffer.from([0x10]),
      varint(req.responseSize),
      Buffer.from([0x32]),
      varint(msg.length),
      msg,
    ]);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    return new Promise((resolve, reject) => {
      const s = this.session.request({
        ':method': 'POST',
        ':path': '/sibyl.demo.v1.Demo/Echo',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      s.on('response', (h) => (status = h['grpc-status'] as string | undefined));
      s.on('trailers', (h) => (status = h['grpc-status'] as string | undefined));
      s.on('data', () => undefined);
      s.on('error', reject);
      s.on('close', () => (status === '0' ? resolve() : reject(new Error(`Echo: grpc-status ${status}`))));
      s.end(frame);
    });
  }

  timed(n: number, request: (i: number) => { message: string; responseSize: number }): Promise<number[]> {
    return timedCalls(n, request, (req) => this.echo(req));
  }

  close(): void {
    this.session.close();
  }
}

/** `n` calls one after another, each request from `request(i)`; the latency of each, ms. */
async function timedCalls<R>(
  n: number,
  request: (i: number) => R,
  call: (req: R) => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const req = request(i);
    const t0 = process.hrtime.bigint();
    await call(req);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** The router's counts of `tier` lookups by result (sibyl_cache_requests_total). */
async function tierCounts(metricsAddr: string, tier: string): Promise<Record<'hit' | 'miss', number>> {
  const text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
  const count = (result: string) => {
    const re = new RegExp(
      `^sibyl_cache_requests_total\\{pool="${POOL}",tier="${tier}",result="${result}"\\} (\\S+)$`,
      'm',
    );
    return Number(re.exec(text)?.[1] ?? 0);
  };
  return { hit: count('hit'), miss: count('miss') };
}

/**
 * Runs `phase` and fails unless the router counted exactly `want` more `tier` lookups of each result
 * meanwhile: figures that would not measure what they say are refused.
 */
export async function checked<T>(
  metricsAddr: string,
  tier: string,
  want: Partial<Record<'hit' | 'miss', number>>,
  what: string,
  phase: () => Promise<T>,
): Promise<T> {
  const before = await tierCounts(metricsAddr, tier);
  const out = await phase();
  const after = await tierCounts(metricsAddr, tier);
  for (const [result, n] of Object.entries(want) as Array<['hit' | 'miss', number]>) {
    const got = after[result] - before[result];
    if (got !== n)
      throw new SibylError(
        'ERR_CACHE',
        `${what}: the router counted ${got} ${tier} ${result}s, not ${n}, so its figures would not measure what they say`,
      );
  }
  return out;
}
