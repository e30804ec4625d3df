import * as grpc from '@grpc/grpc-js';
import path from 'node:path';
import { quantile } from '../sim/metrics.js';
import { table } from '../sim/report.js';
import { connectedEchoClient, type EchoClient } from './echo-client.js';
import { startBenchBackend, startRouterWithPools, withProcesses } from './processes.js';

/**
 * `sibyl bench router`'s overload section: twice the pool's capacity through real routers, the default
 * concurrency limit (QueueDelay) against Gradient2, side by side: each its own router over its own
 * backends (4 × 2 slots × 100 ms, log-normal noise σ 0.1, as test/resilience/overload.test.ts), each
 * limit per endpoint starting at 4, a third of the calls each critical, default and sheddable.
 *
 * Per setting, at the same time as the other: the backends' capacity (straight to them, exactly
 * slots × backends calls in flight, closed loop), the unloaded p99 through the router (a fifth of
 * capacity), then twice the capacity open loop: goodput, the admitted calls' p50 and p99 and their ratio
 * to the unloaded p99, shed calls' latency, success by priority. Issue 18's targets: goodput ≥ 90% of
 * capacity, admitted p99 ≤ 1.5 × unloaded, critical ≥ default ≥ sheddable.
 */
const OVERLOAD = { slots: 2, latencyMs: 100, jitter: 0.1, initialLimit: 4, warmupS: 4 } as const;
const ALGORITHMS = ['Gradient2', 'QueueDelay'] as const;
const PRIORITIES = ['critical', 'default', 'sheddable'] as const;
type Priority = (typeof PRIORITIES)[number];
const RESOURCE_EXHAUSTED = 8;

export interface PriorityCall {
  priority: Priority;
  code: number;
  latencyMs: number;
}

export interface OverloadFigures {
  algorithm: string;
  capacityRps: number;
  offeredRps: number;
  goodputRps: number;
  /** goodput ÷ capacity */
  goodputShare: number;
  unloadedP99Ms: number;
  admittedP50Ms: number;
  admittedP99Ms: number;
  /** admitted p99 ÷ unloaded p99 */
  admittedRatio: number;
  shedP50Ms: number;
  shedP95Ms: number;
  success: Record<Priority, number>;
  statuses: Record<string, number>;
}

export interface OverloadComparison {
  setup: string;
  settings: OverloadFigures[];
}

export interface OverloadOptions {
  backends: number;
  /** Seconds measured at twice the capacity (after OVERLOAD.warmupS). */
  seconds: number;
  deadlineMs: number;
}

const sorted = (xs: number[]) => xs.sort((a, b) => a - b);

/** The figures of one setting from its calls at twice the capacity (pure). */
export function summariseOverload(
  algorithm: string,
  calls: readonly PriorityCall[],
  o: { capacityRps: number; offeredRps: number; unloadedP99Ms: number; seconds: number },
): OverloadFigures {
  const ok = sorted(calls.filter((c) => c.code === 0).map((c) => c.latencyMs));
  const shed = sorted(calls.filter((c) => c.code === RESOURCE_EXHAUSTED).map((c) => c.latencyMs));
  const statuses: Record<string, number> = {};
  for (const c of calls) {
    const name = c.code === 0 ? 'OK' : (grpc.status[c.code] ?? String(c.code));
    statuses[name] = (statuses[name] ?? 0) + 1;
  }
  const success = {} as Record<Priority, number>;
  for (const p of PRIORITIES) {
    const mine = calls.filter((c) => c.priority === p);
    success[p] = mine.length > 0 ? mine.filter((c) => c.code === 0).length / mine.length : NaN;
  }
  const goodputRps = ok.length / o.seconds;
  const admittedP99Ms = quantile(ok, 0.99);
  return {
    algorithm,
    capacityRps: o.capacityRps,
    offeredRps: o.offeredRps,
    goodputRps,
    goodputShare: goodputRps / o.capacityRps,
    unloadedP99Ms: o.unloadedP99Ms,
    admittedP50Ms: quantile(ok, 0.5),
    admittedP99Ms,
    admittedRatio: admittedP99Ms / o.unloadedP99Ms,
    shedP50Ms: quantile(shed, 0.5),
    shedP95Ms: quantile(shed, 0.95),
    success,
    statuses,
  };
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '-');

export function formatOverload(c: OverloadComparison): string[] {
  const head = [
    '',
    'capacity/s',
    'goodput/s',
    'of capacity',
    'unloaded p99',
    'admitted p50',
    'p99',
    '× unloaded',
  ];
  const rows = c.settings.map((s) => [
    s.algorithm,
    f0(s.capacityRps),
    f0(s.goodputRps),
    pct(s.goodputShare),
    f0(s.unloadedP99Ms),
    f0(s.admittedP50Ms),
    f0(s.admittedP99Ms),
    Number.isFinite(s.admittedRatio) ? s.admittedRatio.toFixed(2) : '-',
  ]);
  return [
    `overload: ${c.setup}`,
    ...table(head, rows).split('\n'),
    ...c.settings.map(
      (s) =>
        `  ${s.algorithm}: success critical ${pct(s.success.critical)}, default ${pct(s.success.default)}, sheddable ${pct(s.success.sheddable)}; shed answers p50 ${f0(s.shedP50Ms)} ms, p95 ${f0(s.shedP95Ms)} ms`,
    ),
  ];
}

function call(c: EchoClient, priority: Priority, deadlineMs: number): Promise<PriorityCall> {
  const md = new grpc.Metadata();
  if (priority !== 'default') md.set('x-sibyl-priority', priority);
  const start = performance.now();
  return new Promise((resolve) =>
    c.echo({}, md, { deadline: Date.now() + deadlineMs }, (err) =>
      resolve({ priority, code: err ? err.code : 0, latencyMs: performance.now() - start }),
    ),
  );
}

/** Calls per second `addresses` serve with `perTarget` calls in flight on each (closed loop). */
async function capacity(addresses: readonly string[], perTarget: number, seconds: number): Promise<number> {
  const clients = await Promise.all(addresses.map(connectedEchoClient));
  try {
    let done = 0;
    let stop = false;
    const worker = async (c: EchoClient) => {
      while (!stop) if ((await call(c, 'critical', 10_000)).code === 0) done++;
    };
    const workers = clients.flatMap((c) => Array.from({ length: perTarget }, () => worker(c)));
    await new Promise((r) => setTimeout(r, 1000));
    const from = done;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const rate = (done - from) / ((performance.now() - t0) / 1000);
    stop = true;
    await Promise.all(workers);
    return rate;
  } finally {
    for (const c of clients) c.close();
  }
}

/** Open loop at `rps` on a fixed schedule, priorities in turn; the calls started after `warmupS`. */
async function load(address: string, rps: number, warmupS: number, seconds: number, deadlineMs: number) {
  const c = await connectedEchoClient(address);
  try {
    const n = Math.round(rps * (warmupS + seconds));
    const skip = Math.round(rps * warmupS);
    const t0 = performance.now();
    const pending: Promise<PriorityCall>[] = [];
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rps - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pending.push(call(c, PRIORITIES[i % 3] as Priority, deadlineMs));
    }
    return (await Promise.all(pending)).slice(skip);
  } finally {
    c.close();
  }
}

export async function overload(o: OverloadOptions, dir: string): Promise<OverloadComparison> {
  return withProcesses(async (children) => {
    const settings = await Promise.all(
      ALGORITHMS.map(async (algorithm) => {
        const backends = await Promise.all(
          Array.from({ length: o.backends }, (_, i) =>
            startBenchBackend(`overload ${algorithm} backend ${i}`, OVERLOAD.latencyMs, [
              '--jitter',
              String(OVERLOAD.jitter),
              '--concurrency',
              String(OVERLOAD.slots),
            ]),
          ),
        );
        children.push(...backends.map((b) => b.child));
        const name = `overload-${algorithm.toLowerCase()}`;
        // QueueDelay is the CRD's default: that setting names no algorithm
        const concurrency = { initialLimit: OVERLOAD.initialLimit, minLimit: 1, maxLimit: 64 };
        const router = await startRouterWithPools(`router ${name}`, path.join(dir, `${name}.yaml`), [
          {
            name,
            match: { services: ['sibyl.demo.v1.Demo'] },
            endpoints: backends.map((b) => ({ address: b.listening })),
            balancing: { policy: 'LeastRequest' },
            concurrency: algorithm === 'QueueDelay' ? concurrency : { algorithm, ...concurrency },
          },
        ]);
        children.push(router.child);
        return { algorithm, backends: backends.map((b) => b.listening), router: router.listening };
      }),
    );
    const both = <T>(f: (s: (typeof settings)[number], i: number) => Promise<T>) =>
      Promise.all(settings.map(f));
    const caps = await both((s) => capacity(s.backends, OVERLOAD.slots, 3));
    const unloaded = await both((s, i) => load(s.router, (caps[i] as number) / 5, 1, 8, o.deadlineMs));
    const over = await both((s, i) =>
      load(s.router, 2 * (caps[i] as number), OVERLOAD.warmupS, o.seconds, o.deadlineMs),
    );
    return {
      setup:
        `${o.backends} backends × ${OVERLOAD.slots} slots × ${OVERLOAD.latencyMs} ms (noise σ ${OVERLOAD.jitter}), LeastRequest, ` +
        `the limit per endpoint from ${OVERLOAD.initialLimit}; twice the measured capacity for ${o.seconds}s after ${OVERLOAD.warmupS}s, ` +
        'a third each critical/default/sheddable; unloaded p99 at a fifth of capacity',
      settings: settings.map((s, i) =>
        summariseOverload(s.algorithm, over[i] as PriorityCall[], {
          capacityRps: caps[i] as number,
          offeredRps: 2 * (caps[i] as number),
          unloadedP99Ms: quantile(
            sorted((unloaded[i] as PriorityCall[]).filter((c) => c.code === 0).map((c) => c.latencyMs)),
            0.99,
          ),
          seconds: o.seconds,
        }),
      ),
    };
  });
}
