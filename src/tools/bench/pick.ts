import { pathToFileURL } from 'node:url';
import { balancerNames, createBalancer, type Endpoint, type PickRequest } from '../../balancer/index.js';
import { ManualClock, seededRandom } from '../../util/clock.js';

/**
 * What a pick costs (docs/architecture.md, "Router": "a pick costs microseconds"). Each policy runs on a virtual clock
 * over a pool with varied in-flight counts and fresh operator hints, after a warm-up that fills its
 * state; then `runs` timed runs of `picks` picks each. Reported: the median ns per pick, and per whole
 * call (pick + onCallStarted + onCallEnded). Measured here, on this machine, every time.
 *
 *   npm run build && node dist/tools/bench/pick.js [--endpoints 100] [--picks 100000] [--runs 7]
 */
export interface Row {
  policy: string;
  endpoints: number;
  nsPerPick: number;
  nsPerCall: number;
  runs: number;
}

export interface PickBenchOptions {
  endpoints?: number;
  picks?: number;
  runs?: number;
  policies?: string[];
}

const req: PickRequest = { method: '/bench.Svc/Get', payloadBytes: 2048 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function runPickBench(options: PickBenchOptions = {}): Row[] {
  const n = options.endpoints ?? 100;
  const picks = options.picks ?? 100_000;
  const runs = options.runs ?? 7;
  const rows: Row[] = [];
  for (const policy of options.policies ?? balancerNames()) {
    const clock = new ManualClock(0);
    const random = seededRandom(1);
    const b = createBalancer(policy, { clock, random: seededRandom(2) });
    const pool: Endpoint[] = Array.from({ length: n }, (_, i) => ({
      id: `10.0.${i >> 8}.${i & 255}:50051`,
      address: `10.0.${i >> 8}.${i & 255}:50051`,
      inflight: Math.floor(random() * 6),
      hints: { predictedLatencyMs: 5 + random() * 20, errorRate: 0.01, queueLength: random() * 4, atMs: 0 },
      load: { cpu: random(), atMs: 0 },
    }));
    const call = (): Endpoint => {
      const ep = b.pick(pool, req);
      ep.inflight++;
      b.onCallStarted?.(ep, req);
      clock.advance(0.01);
      ep.inflight--;
      const latencyMs = 2 + random() * 10;
      b.onCallEnded(ep, req, {
        ok: random() > 0.01,
        code: 0,
        latencyMs,
        startedAtMs: clock.now() - latencyMs,
      });
      return ep;
    };
    for (let i = 0; i < 20_000; i++) call(); // warm-up: JIT and the policy's per-endpoint state
    let sink = 0;
    const perPick: number[] = [];
    const perCall: number[] = [];
    for (let r = 0; r < runs; r++) {
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < picks; i++) {
        sink += b.pick(pool, req).inflight;
        clock.advance(0.01);
      }
      perPick.push(Number(process.hrtime.bigint() - t0) / picks);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < picks; i++) sink += call().inflight;
      perCall.push(Number(process.hrtime.bigint() - t0) / picks);
    }
    if (sink < 0) throw new Error('unreachable'); // keeps the loop's result alive
    rows.push({ policy, endpoints: n, nsPerPick: median(perPick), nsPerCall: median(perCall), runs });
  }
  return rows;
}

export function formatRows(rows: Row[]): string {
  const head = ['policy', 'endpoints', 'ns/pick (median)', 'ns/call (median)', 'runs'];
  const body = rows.map((r) => [
    r.policy,
    String(r.endpoints),
    r.nsPerPick.toFixed(0),
    r.nsPerCall.toFixed(0),
    String(r.runs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function flag(args: string[], name: string): number | undefined {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : undefined;
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const rows = runPickBench({
    endpoints: flag(args, 'endpoints'),
    picks: flag(args, 'picks'),
    runs: flag(args, 'runs'),
  });
  console.log(formatRows(rows));
}
