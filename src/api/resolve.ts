import type { TSchema, Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parseDuration } from '../util/duration.js';
import {
  Balancing,
  CircuitBreaker,
  Concurrency,
  Hedging,
  PredictedTimeout,
  Retries,
  Telemetry,
  type BackendPoolSpec,
  type PolicyName,
  type RETRY_ON,
  type LIMIT_ALGORITHMS,
} from './backendpool.js';

/**
 * A BackendPool spec with every default applied, once, from the CRD's own schema (TypeBox
 * `Value.Default` over each section's `default` annotations), and durations in milliseconds. The
 * operator, the router and the simulator read this, never the raw spec, so no default is restated as a
 * literal anywhere else and two specs that differ only by a spelled-out default resolve equal.
 *
 * A section whose absence means something stays optional: `concurrency` (no limit), `timeout` (no
 * deadline beyond the client's), `telemetry.prometheus` (no scrape). Every other section is present.
 */
export interface ResolvedPoolSpec {
  readonly balancing: {
    readonly policy: PolicyName;
    readonly fallbackPolicy: Exclude<PolicyName, 'Predictive'>;
    readonly exploration: number;
    readonly model: { readonly retrainIntervalMs: number; readonly minSamples: number };
  };
  readonly circuitBreaker: BreakerSpec;
  readonly concurrency?: ConcurrencySpec;
  readonly retries: {
    readonly maxAttempts: number;
    readonly retryOn: readonly (typeof RETRY_ON)[number][];
    readonly budgetPercent: number;
  };
  readonly hedging: {
    readonly enabled: boolean;
    /** 'Predicted', or a fixed delay in ms. */
    readonly delay: 'Predicted' | number;
    /** With delay 'Predicted': the quantile of the call's predicted latency that is its hedge delay. */
    readonly quantile: number;
    readonly maxPercent: number;
  };
  /** spec.timeout.default: the deadline of calls that carry none, ms. */
  readonly timeoutMs?: number;
  /** spec.timeout.predicted: per-try deadlines from the model. */
  readonly predictedTimeout?: PredictedTimeoutSpec;
  readonly telemetry: TelemetrySpec;
  readonly idempotentMethods: readonly string[];
}

/** Each try's deadline: clamp(multiplier × its predicted p99, floorMs, ceilingMs), within the call's. */
export interface PredictedTimeoutSpec {
  readonly multiplier: number;
  readonly floorMs: number;
  readonly ceilingMs?: number;
}

export interface BreakerSpec {
  readonly failureThreshold: number;
  readonly recoveryTimeoutMs: number;
  readonly halfOpenMaxCalls: number;
  readonly maxEjectionPercent: number;
}

export interface ConcurrencySpec {
  readonly algorithm: (typeof LIMIT_ALGORITHMS)[number];
  readonly initialLimit: number;
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly targetLatencyMs?: number;
  readonly targetSuccessRate?: number;
}

export interface TelemetrySpec {
  readonly intervalMs: number;
  readonly prometheus?: {
    readonly port: number | string;
    readonly path: string;
    readonly cpuSeries: string;
    readonly memorySeries: string;
    readonly latencySeries: string;
    readonly handledSeries: string;
    readonly startedSeries: string;
  };
  readonly orca: boolean;
  /** Out-of-band ORCA reporting interval (orcaInterval, else interval). */
  readonly orcaIntervalMs: number;
  readonly metricsApi: boolean;
}

/** `section` with its schema's defaults filled in (a copy: the input is not touched). */
function withDefaults<T extends TSchema>(schema: T, section: Static<T> | undefined): Required<Static<T>> {
  return Value.Default(schema, structuredClone(section ?? {})) as Required<Static<T>>;
}

/** The policy settings a BackendPool spec (or a routes file's pool) asks for, defaults applied. */
export function resolvePoolSpec(spec: Omit<BackendPoolSpec, 'match'>): ResolvedPoolSpec {
  const b = withDefaults(Balancing, spec.balancing);
  const model = withDefaults(Balancing.properties.model, b.model);
  const r = withDefaults(Retries, spec.retries);
  const h = withDefaults(Hedging, spec.hedging);
  const t = withDefaults(Telemetry, spec.telemetry);
  const prom = t.prometheus && withDefaults(Telemetry.properties.prometheus, t.prometheus);
  return {
    balancing: {
      policy: b.policy,
      fallbackPolicy: b.fallbackPolicy,
      exploration: b.exploration,
      model: {
        retrainIntervalMs: parseDuration(model.retrainInterval),
        minSamples: model.minSamples,
      },
    },
    circuitBreaker: resolveBreaker(spec.circuitBreaker),
    ...(spec.concurrency ? { concurrency: resolveConcurrency(spec.concurrency) } : {}),
    retries: { maxAttempts: r.maxAttempts, retryOn: [...r.retryOn], budgetPercent: r.budgetPercent },
    hedging: {
      enabled: h.enabled,
      delay: h.delay === 'Predicted' ? 'Predicted' : parseDuration(h.delay),
      quantile: h.quantile,
      maxPercent: h.maxPercent,
    },
    ...resolveTimeout(spec.timeout),
    telemetry: {
      intervalMs: parseDuration(t.interval),
      ...(prom
        ? {
            prometheus: {
              port: prom.port,
              path: prom.path,
              cpuSeries: prom.cpuSeries,
              memorySeries: prom.memorySeries,
              latencySeries: prom.latencySeries,
              handledSeries: prom.handledSeries,
              startedSeries: prom.startedSeries,
            },
          }
        : {}),
      orca: t.orca,
      orcaIntervalMs: parseDuration(t.orcaInterval ?? t.interval),
      metricsApi: t.metricsApi,
    },
    idempotentMethods: [...(spec.idempotentMethods ?? [])],
  };
}

/**
 * spec.timeout. A bare duration (the field's shape before it gained `predicted`) still reads as the
 * default deadline, so objects stored by an older release keep their meaning.
 */
export function resolveTimeout(
  spec: BackendPoolSpec['timeout'] | string,
): Pick<ResolvedPoolSpec, 'timeoutMs' | 'predictedTimeout'> {
  if (spec === undefined) return {};
  if (typeof spec === 'string') return { timeoutMs: parseDuration(spec) };
  const p = spec.predicted && withDefaults(PredictedTimeout, spec.predicted);
  return {
    ...(spec.default !== undefined ? { timeoutMs: parseDuration(spec.default) } : {}),
    ...(p
      ? {
          predictedTimeout: {
            multiplier: p.multiplier,
            floorMs: parseDuration(p.floor),
            ...(p.ceiling !== undefined ? { ceilingMs: parseDuration(p.ceiling) } : {}),
          },
        }
      : {}),
  };
}

/** spec.circuitBreaker with its defaults (absent: every default). */
export function resolveBreaker(spec: BackendPoolSpec['circuitBreaker']): BreakerSpec {
  const cb = withDefaults(CircuitBreaker, spec);
  return {
    failureThreshold: cb.failureThreshold,
    recoveryTimeoutMs: parseDuration(cb.recoveryTimeout),
    halfOpenMaxCalls: cb.halfOpenMaxCalls,
    maxEjectionPercent: cb.maxEjectionPercent,
  };
}

/** spec.concurrency with its defaults (a present section; absent means no limit at all). */
export function resolveConcurrency(spec: NonNullable<BackendPoolSpec['concurrency']>): ConcurrencySpec {
  const c = withDefaults(Concurrency, spec);
  return {
    algorithm: c.algorithm,
    initialLimit: c.initialLimit,
    minLimit: c.minLimit,
    maxLimit: c.maxLimit,
    ...(c.targetLatency !== undefined ? { targetLatencyMs: parseDuration(c.targetLatency) } : {}),
    ...(c.targetSuccessRate !== undefined ? { targetSuccessRate: c.targetSuccessRate } : {}),
  };
}
