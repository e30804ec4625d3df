import * as grpc from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RouterAuthenticator } from '../../control/auth.js';
import { ControlClient } from '../../control/client.js';
import type { WireEndpoint, WirePool } from '../../control/messages.js';
import { RoutingState } from '../../control/routing-state.js';
import { ControlServer } from '../../control/server.js';
import { quantile } from '../sim/metrics.js';
import { seededRandom, systemClock, systemRandom } from '../../util/clock.js';
import { parseDuration } from '../../util/duration.js';
import { systemTimers } from '../../util/timers.js';

/**
 * `sibyl bench control`: the control stream alone, on loopback. P pools × E endpoints, R routers;
 * routine figure refreshes flood the routing state at F changes/s while an urgent change (an endpoint
 * removed) is made twice a second. Measures the delay until every router applied the urgent change,
 * pushes per second per router (routine ones coalesced to one per push interval) and control bytes
 * per router. Token review is a stand-in that accepts every token: the API server is not what is
 * measured here (the integration tests run the real TokenReview).
 */
export interface ControlBenchResult {
  pools: number;
  endpoints: number;
  routers: number;
  routinePerSecond: number;
  pushIntervalMs: number;
  urgentDelayMs: { p50: number; p99: number; max: number; n: number };
  pushesPerSecondPerRouter: number;
  bytesPerSecondPerRouter: number;
  snapshotBytes: number;
}

function endpoint(i: number, weight: number): WireEndpoint {
  return {
    address: `10.1.${i >> 8}.${i & 255}:50051`,
    pod: `p-${i}`,
    ready: true,
    forceOpen: false,
    figuresAgeMs: 0,
    weight,
  };
}

function pool(p: number, eps: number, random: () => number, removed = -1): WirePool {
  const endpoints: WireEndpoint[] = [];
  for (let i = 0; i < eps; i++)
    if (i !== removed) endpoints.push(endpoint(p * 1000 + i, Math.round(random() * 1000) / 1000));
  return { name: `bench/p${p}`, specJson: '{"match":{"services":["x.Y"]}}', endpoints, policy: 'PeakEwma' };
}

export async function runControlBench(o: {
  pools: number;
  endpoints: number;
  routers: number;
  routinePerSecond: number;
  durationMs: number;
  pushIntervalMs: number;
}): Promise<ControlBenchResult> {
  const random = seededRandom(3);
  const state = new RoutingState(1);
  for (let p = 0; p < o.pools; p++) state.update(`bench/p${p}`, pool(p, o.endpoints, random));
  const log = pino({ level: 'silent' });
  const server = new ControlServer({
    state,
    auth: new RouterAuthenticator(
      async () => ({ authenticated: true, username: 'system:serviceaccount:bench:router' }),
      ['bench/router'],
      systemClock,
    ),
    clock: systemClock,
    timers: systemTimers,
    log,
    pushIntervalMs: o.pushIntervalMs,
    reportIntervalMs: 60_000,
    serving: () => true,
    onLoad: () => {},
  });
  const port = await server.listen('127.0.0.1:0', grpc.ServerCredentials.createInsecure());
  // Urgent marker: pool 0 loses endpoint k; a router has applied it when pool 0 lacks that endpoint.
  let marker: { removed: string; at: number; waiting: Set<string> } | undefined;
  const delays: number[] = [];
  const clients: ControlClient[] = [];
  for (let r = 0; r < o.routers; r++) {
    const id = `r${r}`;
    clients.push(
      new ControlClient({
        address: `127.0.0.1:${port}`,
        token: async () => 't',
        routerId: id,
        namespace: '',
        version: 'bench',
        apply: (pools) => {
          const m = marker;
          if (m && m.waiting.has(id)) {
            const p0 = pools.find((p) => p.name === 'bench/p0');
            if (p0 && !p0.endpoints.some((e) => e.address === m.removed)) {
              m.waiting.delete(id);
              if (m.waiting.size === 0) delays.push(performance.now() - m.at);
            }
          }
          return undefined;
        },
        report: () => ({ endpoints: [], samples: [], caches: [] }),
        log,
        clock: systemClock,
        timers: systemTimers,
        random: systemRandom,
      }),
    );
  }
  for (const c of clients) c.start();
  while (clients.some((c) => c.version === 0)) await new Promise((r) => setTimeout(r, 20));
  const snapshotBytes = Math.max(...server.routers().map((r) => r.bytes));
  const before = server.routers();
  const start = performance.now();
  const flood = setInterval(() => {
    const n = Math.max(1, Math.round((o.routinePerSecond * 10) / 1000));
    for (let i = 0; i < n; i++) {
      const p = 1 + Math.floor(random() * Math.max(1, o.pools - 1));
      state.update(`bench/p${p}`, pool(p, o.endpoints, random));
    }
  }, 10);
  let k = 0;
  const urgent = setInterval(() => {
    if (marker && marker.waiting.size > 0) return; // the previous one is still on its way
    const removedIndex = k++ % o.endpoints;
    marker = {
      removed: endpoint(removedIndex, 0).address,
      at: performance.now(),
      waiting: new Set(clients.map((_, i) => `r${i}`)),
    };
    state.update('bench/p0', pool(0, o.endpoints, random, removedIndex));
  }, 500);
  await new Promise((r) => setTimeout(r, o.durationMs));
  clearInterval(flood);
  clearInterval(urgent);
  const seconds = (performance.now() - start) / 1000;
  const after = server.routers();
  const pushes = after.reduce((a, r) => a + r.pushes, 0) - before.reduce((a, r) => a + r.pushes, 0);
  const bytes = after.reduce((a, r) => a + r.bytes, 0) - before.reduce((a, r) => a + r.bytes, 0);
  for (const c of clients) c.stop();
  await server.close();
  delays.sort((a, b) => a - b);
  return {
    pools: o.pools,
    endpoints: o.endpoints,
    routers: o.routers,
    routinePerSecond: o.routinePerSecond,
    pushIntervalMs: o.pushIntervalMs,
    urgentDelayMs: {
      p50: quantile(delays, 0.5),
      p99: quantile(delays, 0.99),
      max: delays[delays.length - 1] ?? NaN,
      n: delays.length,
    },
    pushesPerSecondPerRouter: pushes / o.routers / seconds,
    bytesPerSecondPerRouter: bytes / o.routers / seconds,
    snapshotBytes,
  };
}

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      pools: { type: 'string', default: '100' },
      endpoints: { type: 'string', default: '20' },
      routers: { type: 'string', default: '10' },
      routine: { type: 'string', default: '500' },
      duration: { type: 'string', default: '20s' },
      'push-interval': { type: 'string', default: '1s' },
      json: { type: 'boolean', default: false },
    },
  });
  const r = await runControlBench({
    pools: Number(v.pools),
    endpoints: Number(v.endpoints),
    routers: Number(v.routers),
    routinePerSecond: Number(v.routine),
    durationMs: parseDuration(v.duration as string),
    pushIntervalMs: parseDuration(v['push-interval'] as string),
  });
  if (v.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `control stream: ${r.pools} pools × ${r.endpoints} endpoints, ${r.routers} routers, ${r.routinePerSecond} routine changes/s, push interval ${r.pushIntervalMs} ms`,
    );
    console.log(
      `  urgent change → every router applied   p50 ${r.urgentDelayMs.p50.toFixed(1)} ms, p99 ${r.urgentDelayMs.p99.toFixed(1)} ms (n=${r.urgentDelayMs.n})`,
    );
    console.log(`  pushes per router                      ${r.pushesPerSecondPerRouter.toFixed(2)} /s`);
    console.log(
      `  control traffic per router             ${(r.bytesPerSecondPerRouter / 1024).toFixed(1)} KiB/s (first snapshot ${(r.snapshotBytes / 1024).toFixed(0)} KiB)`,
    );
  }
  return 0;
}
