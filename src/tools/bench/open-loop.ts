import * as grpc from '@grpc/grpc-js';
import type { EchoClient } from './echo-client.js';

/** An open-loop load of Demo/Echo calls from a grpc-js client: `sibyl bench router` and load-client.ts. */

/** One run's calls: latency (ms) and status code of each, in the order they started. */
export interface CallLog {
  latencyMs: number[];
  codes: number[];
}

/**
 * A call every 1/rps seconds for `seconds` (Poisson arrivals would add their own bursts; a fixed
 * schedule keeps two settings' loads identical), each with the deadline, whatever the calls before it
 * are doing (no coordinated omission); appends every call's latency and status to `log` once all
 * have ended.
 */
export async function openLoop(
  client: EchoClient,
  o: { rps: number; seconds: number; deadlineMs: number; request?: object },
  log?: CallLog,
): Promise<void> {
  const request = o.request ?? {};
  const n = Math.round(o.rps * o.seconds);
  const latencyMs = new Array<number>(n);
  const codes = new Array<number>(n);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const at = t0 + (i * 1000) / o.rps;
    const wait = at - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const start = performance.now();
    pending.push(
      new Promise<void>((resolve) => {
        client.echo(request, new grpc.Metadata(), { deadline: Date.now() + o.deadlineMs }, (err) => {
          latencyMs[i] = performance.now() - start;
          codes[i] = err ? err.code : 0;
          resolve();
        });
      }),
    );
  }
  await Promise.all(pending);
  if (!log) return;
  for (let i = 0; i < n; i++) {
    log.latencyMs.push(latencyMs[i] as number);
    log.codes.push(codes[i] as number);
  }
}
