/**
 * What one run measured, in the fixed shape of bench/scenarios/README.md, plus figures the overload targets and the
 * plots need. Latency percentiles are over successful calls started after warm-up; `p99AllMs` counts
 * every call started after warm-up, a failed, shed or timed-out one at the deadline, so failing fast
 * never looks fast. Percentiles are nearest-rank.
 */
export interface PolicyFigures {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  p99AllMs: number;
  meanMs: number;
  errorRate: number;
  goodputRps: number;
  maxInflight: number;
  share: number[];
}

/** The same figures over one stretch of the run (the steady overload after a ramp). */
export interface WindowFigures {
  fromS: number;
  toS: number;
  offeredRps: number;
  goodputRps: number;
  /** p99 of the calls admitted and answered OK: what overload control holds (issue 18's target). */
  p99Ms: number;
  p99AllMs: number;
  errorRate: number;
  shedRate: number;
  /** Slowest answer to a shed call, ms (0 when none was shed). */
  shedMaxMs: number;
}

export interface RunResult extends PolicyFigures {
  calls: number;
  /** Probes sent (shadow copies of calls, Balancer.probeTarget) over `calls`, after warm-up. */
  probeRate: number;
  /** Hedges and retries (try-policy.ts) over `calls`, after warm-up: the extra tries' share. */
  hedgeRate: number;
  retryRate: number;
  shedRate: number;
  shedMaxMs: number;
  /** Steady part after `load.ramp`, when the scenario has one. */
  peak?: WindowFigures;
  /** Per second of the run: calls offered, and calls answered OK (by start second). */
  timeline: { offered: number[]; ok: number[] };
  /** Latency of all calls (failures at the deadline) at the probabilities in CDF_POINTS. */
  cdf: number[];
}

/** Probabilities at which latency CDFs are kept (dense in the tail). */
export const CDF_POINTS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => (i + 1) / 100),
  0.995,
  0.998,
  0.999,
  0.9995,
  0.9999,
];

/** A growable array of latencies, sorted once at the end. */
class LatencyLog {
  private data = new Float64Array(4096);
  private n = 0;
  private sortedView: Float64Array | undefined;

  get length(): number {
    return this.n;
  }

  push(x: number): void {
    if (this.n === this.data.length) {
      const d = new Float64Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.n++] = x;
    this.sortedView = undefined;
  }

  sorted(): Float64Array {
    return (this.sortedView ??= this.data.subarray(0, this.n).sort());
  }

  mean(): number {
    let s = 0;
    for (let i = 0; i < this.n; i++) s += this.data[i] as number;
    return this.n > 0 ? s / this.n : NaN;
  }
}

/** Nearest-rank p-quantile of a sorted array; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))] as number;
}

class Window {
  ok = new LatencyLog();
  all = new LatencyLog();
  failed = 0;
  shed = 0;
  shedMaxMs = 0;

  constructor(
    readonly fromMs: number,
    readonly toMs: number,
  ) {}

  add(ok: boolean, shed: boolean, latencyMs: number, deadlineMs: number): void {
    if (ok) {
      this.ok.push(latencyMs);
      this.all.push(latencyMs);
      return;
    }
    this.failed++;
    this.all.push(deadlineMs);
    if (shed) {
      this.shed++;
      if (latencyMs > this.shedMaxMs) this.shedMaxMs = latencyMs;
    }
  }
}

/** Collects a run's outcomes; `result()` turns them into figures. */
export class Recorder {
  private readonly main: Window;
  private readonly peak: Window | undefined;
  private readonly sent: Float64Array;
  private readonly offered: number[];
  private readonly okPerS: number[];
  private probes = 0;
  private hedges = 0;
  private retries = 0;

  constructor(
    servers: number,
    warmupMs: number,
    private readonly durationMs: number,
    private readonly deadlineMs: number,
    peakFromMs?: number,
  ) {
    this.main = new Window(warmupMs, durationMs);
    this.peak =
      peakFromMs !== undefined && peakFromMs < durationMs ? new Window(peakFromMs, durationMs) : undefined;
    this.sent = new Float64Array(servers);
    const seconds = Math.ceil(durationMs / 1000);
    this.offered = new Array<number>(seconds).fill(0);
    this.okPerS = new Array<number>(seconds).fill(0);
  }

  /** A call started at `startMs` was sent to `server`. */
  dispatched(server: number, startMs: number): void {
    if (startMs >= this.main.fromMs) this.sent[server]!++;
  }

  /** A probe was sent at `atMs` (its answer is no client's: it counts in no other figure). */
  probed(atMs: number): void {
    if (atMs >= this.main.fromMs) this.probes++;
  }

  /** Another try of a call started at `callStartMs` was sent: a hedge or a retry. */
  extraTry(kind: 'hedge' | 'retry', callStartMs: number): void {
    if (callStartMs < this.main.fromMs) return;
    if (kind === 'hedge') this.hedges++;
    else this.retries++;
  }

  /** A call started at `startMs` ended: answered OK, or failed (shed: refused by the router's limiter). */
  ended(startMs: number, ok: boolean, shed: boolean, latencyMs: number): void {
    const sec = Math.floor(startMs / 1000);
    this.offered[sec]!++;
    if (ok) this.okPerS[sec]!++;
    if (startMs >= this.main.fromMs) this.main.add(ok, shed, latencyMs, this.deadlineMs);
    if (this.peak && startMs >= this.peak.fromMs) this.peak.add(ok, shed, latencyMs, this.deadlineMs);
  }

  result(maxInflight: number): RunResult {
    const w = this.main;
    const ok = w.ok.sorted();
    const all = w.all.sorted();
    const n = all.length;
    const spanS = (w.toMs - w.fromMs) / 1000;
    const sent = this.sent.reduce((a, b) => a + b, 0);
    const r: RunResult = {
      p50Ms: quantile(ok, 0.5),
      p99Ms: quantile(ok, 0.99),
      p999Ms: quantile(ok, 0.999),
      p99AllMs: quantile(all, 0.99),
      meanMs: w.ok.mean(),
      errorRate: n > 0 ? w.failed / n : 0,
      goodputRps: ok.length / spanS,
      maxInflight,
      share: Array.from(this.sent, (x) => (sent > 0 ? x / sent : 0)),
      calls: n,
      probeRate: n > 0 ? this.probes / n : 0,
      hedgeRate: n > 0 ? this.hedges / n : 0,
      retryRate: n > 0 ? this.retries / n : 0,
      shedRate: n > 0 ? w.shed / n : 0,
      shedMaxMs: w.shedMaxMs,
      timeline: { offered: this.offered, ok: this.okPerS },
      cdf: CDF_POINTS.map((p) => quantile(all, p)),
    };
    if (this.peak) r.peak = windowFigures(this.peak);
    return r;
  }
}

function windowFigures(w: Window): WindowFigures {
  const n = w.all.length;
  const spanS = (w.toMs - w.fromMs) / 1000;
  return {
    fromS: w.fromMs / 1000,
    toS: w.toMs / 1000,
    offeredRps: n / spanS,
    goodputRps: w.ok.length / spanS,
    p99Ms: quantile(w.ok.sorted(), 0.99),
    p99AllMs: quantile(w.all.sorted(), 0.99),
    errorRate: n > 0 ? w.failed / n : 0,
    shedRate: n > 0 ? w.shed / n : 0,
    shedMaxMs: w.shedMaxMs,
  };
}
