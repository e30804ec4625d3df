import type { Random } from '../../util/clock.js';

/**
 * The backend's behaviour, apart from any transport: how long a call takes and whether it fails.
 * The same service-time model as the simulator's servers (bench/scenarios/README.md): a base cost plus a cost per
 * KiB of payload, log-normal noise with mean 1, stretched by a slowdown factor.
 */
export interface ServiceSettings {
  /** Base service time of a call, ms. */
  latencyMs: number;
  /** σ of the log-normal noise (0 = none); 0.3 gives a p99 about twice the median. */
  jitter: number;
  /** Extra service time per KiB of request payload, ms. */
  perKiBMs: number;
  /** Share of calls that fail with errorCode, 0..1. */
  errorRate: number;
  errorCode: number;
  /** Multiplies every service time (1 = normal; 10 = ten times slower). */
  slowdown: number;
  /** While true, no call starts or finishes its service (a GC pause, a stalled disk). */
  pause: boolean;
}

export const DEFAULT_SETTINGS: ServiceSettings = {
  latencyMs: 5,
  jitter: 0.3,
  perKiBMs: 0,
  errorRate: 0,
  errorCode: 14,
  slowdown: 1,
  pause: false,
};

/** A standard normal draw (Box–Muller) from a uniform source. */
function normal(random: Random): number {
  const u = Math.max(random(), Number.MIN_VALUE);
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Log-normal noise with mean 1: exp(σz − σ²/2). */
export function noise(sigma: number, random: Random): number {
  return sigma > 0 ? Math.exp(sigma * normal(random) - (sigma * sigma) / 2) : 1;
}

export interface CallShape {
  payloadBytes: number;
  /** The request's latency_ms, which replaces the base latency when set (> 0). */
  latencyOverrideMs?: number;
}

/** Service time of one call, ms: (base + perKiB × KiB) × noise × slowdown. */
export function serviceTimeMs(s: ServiceSettings, call: CallShape, random: Random): number {
  const base = call.latencyOverrideMs && call.latencyOverrideMs > 0 ? call.latencyOverrideMs : s.latencyMs;
  const work = base + (s.perKiBMs * call.payloadBytes) / 1024;
  return Math.max(0, work * noise(s.jitter, random) * Math.max(s.slowdown, 0));
}

/**
 * The status a call ends with, before any request-level override: 0 (OK), or errorCode with
 * probability errorRate.
 */
export function drawFailure(s: ServiceSettings, random: Random): number {
  return s.errorRate > 0 && random() < s.errorRate ? s.errorCode : 0;
}

/** Changes accepted at run time (POST /control); validated field by field. */
export type SettingsPatch = Partial<ServiceSettings>;

const NUMERIC: Record<string, [min: number, max: number]> = {
  latencyMs: [0, 3_600_000],
  jitter: [0, 5],
  perKiBMs: [0, 3_600_000],
  errorRate: [0, 1],
  errorCode: [1, 16],
  slowdown: [0, 1_000_000],
};

/** Checks a JSON patch; returns the patch or a list of reasons it was refused. */
export function validatePatch(body: unknown): { patch: SettingsPatch } | { errors: string[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { errors: ['body must be a JSON object'] };
  }
  const errors: string[] = [];
  const patch: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(body)) {
    const range = NUMERIC[k];
    if (range) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < range[0] || v > range[1]) {
        errors.push(`${k} must be a number from ${range[0]} to ${range[1]}`);
      } else patch[k] = k === 'errorCode' ? Math.round(v) : v;
    } else if (k === 'pause') {
      if (typeof v !== 'boolean') errors.push('pause must be true or false');
      else patch[k] = v;
    } else errors.push(`unknown setting "${k}"`);
  }
  return errors.length ? { errors } : { patch: patch as SettingsPatch };
}
