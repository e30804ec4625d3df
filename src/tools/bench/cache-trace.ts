import { seededRandom } from '../../util/clock.js';
import { SibylError } from '../../util/errors.js';
import { Zipf } from '../../util/zipf.js';

/**
 * A seeded synthetic request trace for the cache benchmark (`sibyl bench cache`): which key each call
 * asks for, and when.
 *
 *  - Popularity is Zipf: the key at popularity rank r (1 = most popular) is asked for with probability
 *    r^(−s) / H(N, s), H the generalised harmonic number. s = 0.9 by default: web and key-value caches
 *    measure s between about 0.6 and 1.0 (Breslau et al., "Web caching and Zipf-like distributions",
 *    INFOCOM 1999; Atikoglu et al., "Workload analysis of a large-scale key-value store", SIGMETRICS
 *    2012).
 *  - The ranking drifts: every `driftEveryS` seconds, `driftSwaps` keys among the `driftTopRanks` most
 *    popular trade ranks with keys drawn uniformly from all N, so popular keys cool down and unknown
 *    ones become popular, as in a catalogue whose best sellers change.
 *  - The rate follows a daily-like cycle: arrivals are Poisson with rate
 *    meanRps × (1 + amplitude × sin(2π t / dayS)), so the load swings between (1 ± amplitude) × mean
 *    over each "day" (a virtual day of dayS seconds, shortened so a run spans several).
 * Everything is drawn from one mulberry32 stream seeded with `seed`: the same spec gives the same trace.
 */
export interface TraceSpec {
  seed: number;
  /** Distinct keys (N). */
  keys: number;
  /** Calls in the trace. */
  requests: number;
  /** Zipf exponent s. */
  zipfS: number;
  meanRps: number;
  /** Length of one virtual day, s. */
  dayS: number;
  /** Relative swing of the rate over a day, 0 ≤ amplitude < 1. */
  amplitude: number;
  driftEveryS: number;
  driftSwaps: number;
  driftTopRanks: number;
}

export const DEFAULT_TRACE: TraceSpec = {
  seed: 1,
  keys: 50_000,
  requests: 400_000,
  zipfS: 0.9,
  meanRps: 200,
  dayS: 600,
  amplitude: 0.6,
  driftEveryS: 30,
  driftSwaps: 40,
  driftTopRanks: 1000,
};

export interface Trace {
  spec: TraceSpec;
  /** Time of each call, ms from the start (non-decreasing). */
  atMs: Float64Array;
  /** Key of each call, 0 … keys−1. */
  key: Int32Array;
}

export function generateTrace(spec: TraceSpec): Trace {
  const s = spec;
  const bad = (what: string) => new SibylError('ERR_USAGE', `trace: ${what}`);
  if (!(Number.isInteger(s.keys) && s.keys >= 1)) throw bad('keys must be a positive integer');
  if (!(Number.isInteger(s.requests) && s.requests >= 1)) throw bad('requests must be a positive integer');
  if (!(s.zipfS >= 0)) throw bad('zipfS must be ≥ 0');
  if (!(s.meanRps > 0)) throw bad('meanRps must be > 0');
  if (!(s.amplitude >= 0 && s.amplitude < 1)) throw bad('amplitude must be in [0, 1)');
  if (!(s.dayS > 0 && s.driftEveryS > 0)) throw bad('dayS and driftEveryS must be > 0');
  const rnd = seededRandom(s.seed);
  const zipf = new Zipf(s.keys, s.zipfS);
  // rankToKey[r]: the key now at rank r+1. Starts as a random permutation (Fisher–Yates).
  const rankToKey = new Int32Array(s.keys);
  for (let i = 0; i < s.keys; i++) rankToKey[i] = i;
  for (let i = s.keys - 1; i > 0; i--) swap(rankToKey, i, Math.floor(rnd() * (i + 1)));
  const top = Math.min(s.keys, Math.max(1, s.driftTopRanks));

  const atMs = new Float64Array(s.requests);
  const key = new Int32Array(s.requests);
  let t = 0;
  let nextDriftS = s.driftEveryS;
  for (let i = 0; i < s.requests; i++) {
    // Poisson arrivals at the rate of the moment (the rate moves little between two calls).
    const rate = s.meanRps * (1 + s.amplitude * Math.sin((2 * Math.PI * t) / s.dayS));
    t += -Math.log(1 - rnd()) / rate;
    while (t >= nextDriftS) {
      for (let j = 0; j < s.driftSwaps; j++)
        swap(rankToKey, Math.floor(rnd() * top), Math.floor(rnd() * s.keys));
      nextDriftS += s.driftEveryS;
    }
    atMs[i] = t * 1000;
    key[i] = rankToKey[zipf.draw(rnd)] as number;
  }
  return { spec: s, atMs, key };
}

function swap(a: Int32Array, i: number, j: number): void {
  const x = a[i] as number;
  a[i] = a[j] as number;
  a[j] = x;
}

/** One line describing a trace spec (bench output). */
export function describeTrace(s: TraceSpec): string {
  return (
    `${s.requests} calls over ${s.keys} keys, Zipf s=${s.zipfS}, mean ${s.meanRps} calls/s ` +
    `(daily-like cycle ±${Math.round(s.amplitude * 100)}% over ${s.dayS}s days), every ${s.driftEveryS}s ` +
    `${s.driftSwaps} of the top ${s.driftTopRanks} keys trade ranks with random keys; seed ${s.seed}`
  );
}
