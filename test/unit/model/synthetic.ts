import type { TrainingSample } from '../../../src/model/sample.js';
import { seededRandom, type Random } from '../../../src/util/clock.js';

/** A standard normal draw (Box–Muller). */
export function normal(rnd: Random): number {
  const u = 1 - rnd();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

export const NOISE_SIGMA = 0.3;

/**
 * Samples from a known latency function, so the model's figures have a floor to be judged against:
 *   latency = (cost + 0.2 ms/KiB of payload for the expensive method) × (1 + inflight)
 *             × (1 + 2 · max(0, cpu − 0.8)) × log-normal noise (σ 0.3, mean 1)
 * A call fails with probability errorRate and then counts at the 1,000 ms deadline. The built-in
 * estimate a router would have had is a rough one: the latency's mean without the CPU term, off by a
 * log-normal factor (σ 0.3), so a model has something to correct.
 */
export function syntheticSamples(n: number, seed = 7): TrainingSample[] {
  const rnd = seededRandom(seed);
  // the estimate's error from a stream of its own, so the other figures are those of before
  const off = seededRandom(seed ^ 0xe571);
  const out: TrainingSample[] = [];
  for (let i = 0; i < n; i++) {
    const expensive = rnd() < 0.3;
    const methodCostMs = expensive ? 20 : 2;
    const inflight = Math.floor(rnd() * 9);
    const payloadBytes = Math.round(Math.exp(Math.log(200) + rnd() * Math.log(250)));
    const cpu = rnd();
    const hasTelemetry = rnd() < 0.7;
    const errorRate = rnd() * 0.1;
    const service = methodCostMs + (expensive ? (0.2 * payloadBytes) / 1024 : 0);
    const mean = service * (1 + inflight) * (1 + 2 * Math.max(0, cpu - 0.8));
    const latency = mean * Math.exp(NOISE_SIGMA * normal(rnd) - (NOISE_SIGMA * NOISE_SIGMA) / 2);
    const failed = rnd() < errorRate;
    out.push({
      ...(hasTelemetry
        ? {
            cpu,
            memory: 0.3 + 0.2 * rnd(),
            queueLength: Math.max(0, Math.round(inflight * 4 + 2 * normal(rnd))),
          }
        : {}),
      inflight,
      recentLatencyMs: (1 + inflight * 0.8) * Math.exp(0.2 * normal(rnd)),
      payloadBytes,
      methodCostMs,
      errorRate,
      oldestInflightMs: inflight > 0 ? rnd() * service * inflight : 0,
      telemetryAgeMs: hasTelemetry ? rnd() * 2000 : Infinity,
      builtinEstimateMs: service * (1 + inflight) * Math.exp(0.3 * normal(off)),
      latencyMs: failed ? 1000 : latency,
      failed,
    });
  }
  return out;
}
