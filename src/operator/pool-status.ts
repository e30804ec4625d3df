import type { BackendPool, BackendPoolStatus, EndpointStatus, PolicyName } from '../api/backendpool.js';
import type { ResolvedPoolSpec } from '../api/resolve.js';
import type { ActiveAnomaly } from '../anomaly/monitor.js';
import { formatMs } from '../util/duration.js';
import { roundSignificant, roundTo } from '../util/round.js';
import {
  conditionWarnings,
  findCondition,
  removeCondition,
  setCondition,
  type Condition,
} from './conditions.js';
import {
  CACHE_DATA_PATH,
  DATA_PLANE_SYNCED,
  cacheDataPathCondition,
  dataPlaneCondition,
  dataPlanesStatus,
  type DataPlaneFacts,
} from './data-plane-status.js';
import type { PendingEvent } from './context.js';
import { decisionSentence } from './decision.js';
import type { Resolution } from './endpoints.js';
import type { MethodDeadline } from './deadlines.js';
import type { ModelStatus } from './fleet-predictor.js';
import type { EndpointFigures } from './pool-view.js';

export interface PoolWorld {
  pool: BackendPool;
  /** The pool's spec with its defaults applied (api/resolve.ts). */
  spec: ResolvedPoolSpec;
  resolution: Resolution;
  /** The policy routers run (pool-view.ts policyInForce); the spec's own without a control plane. */
  policy: PolicyName;
  /** Set when spec.cacheTierRef is given: whether that CacheTier exists. */
  cacheTierFound?: boolean;
  figures?: ReadonlyMap<string, EndpointFigures>;
  routers?: number;
  routingVersion?: number;
  /** Anomalies active now (absent: no control plane, so no telemetry to judge). */
  anomalies?: readonly ActiveAnomaly[];
  /** The latency model in force (absent: no control plane, so no model either). */
  model?: ModelStatus;
  /** What xDS clients have of the pool (absent: the ADS server does not hold it). */
  dataPlanes?: DataPlaneFacts;
  /** With spec.timeout.predicted: each method's per-try deadline (deadlines.ts). */
  deadlines?: readonly MethodDeadline[];
  now: Date;
}

export interface PoolStatusResult {
  status: BackendPoolStatus;
  events: PendingEvent[];
}

const label = (e: { pod?: string; address: string }) => (e.pod ? `${e.address} (pod ${e.pod})` : e.address);

/**
 * The pool's status rebuilt from the observed world (controller-runtime's rule), plus the events that
 * the change from the stored status calls for. Pure: same world, same status, so an unchanged world
 * produces an identical object and no write.
 */
export function buildPoolStatus(w: PoolWorld): PoolStatusResult {
  const { pool, resolution, now } = w;
  const gen = pool.metadata.generation ?? 0;
  const prev = pool.status ?? {};
  const events: PendingEvent[] = [];
  const policy = w.policy;

  const endpoints: EndpointStatus[] = resolution.ok
    ? resolution.endpoints.map((e) => ({
        address: e.address,
        ...(e.pod ? { pod: e.pod } : {}),
        ready: e.ready,
        ...(w.figures?.get(e.address) ?? {}),
        ...xdsWeight(w.dataPlanes, e.address),
      }))
    : [];
  const ready = endpoints.filter((e) => e.ready);
  const open = endpoints.filter((e) => e.breaker === 'Open').length;

  let conditions: Condition[] = prev.conditions ?? [];
  let problem: string | undefined;
  if (!resolution.ok) {
    problem = resolution.message;
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'False', reason: resolution.reason, message: resolution.message },
      gen,
      now,
    );
  } else if (ready.length === 0) {
    const message =
      endpoints.length === 0
        ? 'the pool has no endpoints'
        : `none of the ${endpoints.length} endpoints is ready`;
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'False', reason: 'NoReadyEndpoints', message },
      gen,
      now,
    );
  } else {
    const message = `${ready.length} of ${endpoints.length} endpoints ready`;
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'True', reason: 'EndpointsReady', message },
      gen,
      now,
    );
  }
  const tierRef = pool.spec.cacheTierRef?.name;
  if (tierRef && w.cacheTierFound === false) {
    const message = `spec.cacheTierRef names CacheTier ${tierRef}, which does not exist in ${pool.metadata.namespace}`;
    conditions = setCondition(
      conditions,
      { type: 'Invalid', status: 'True', reason: 'CacheTierNotFound', message },
      gen,
      now,
    );
  } else {
    conditions = setCondition(
      conditions,
      {
        type: 'Invalid',
        status: 'False',
        reason: 'Valid',
        message: 'the spec refers only to objects that exist',
      },
      gen,
      now,
    );
  }

  // Events for what changed since the status the world last saw.
  const before = new Map((prev.endpoints ?? []).map((e) => [e.address, e]));
  const after = new Map(endpoints.map((e) => [e.address, e]));
  for (const [addr, e] of after) {
    if (!before.has(addr))
      events.push({
        type: 'Normal',
        reason: 'EndpointAdded',
        message: `${label(e)} joined the pool (${e.ready ? 'ready' : 'not ready'}); ${ready.length} of ${endpoints.length} ready`,
      });
  }
  for (const [addr, e] of before) {
    if (!after.has(addr))
      events.push({
        type: 'Normal',
        reason: 'EndpointRemoved',
        message: `${label(e)} left the pool; ${ready.length} of ${endpoints.length} ready`,
      });
  }
  if (w.spec.balancing.policy === 'Predictive' && w.model) {
    const m = w.model;
    const fallback = w.spec.balancing.fallbackPolicy;
    conditions = m.ready
      ? setCondition(
          conditions,
          {
            type: 'ModelReady',
            status: 'True',
            reason: 'ModelLoaded',
            message: `model ${m.version}: ${m.reason}`,
          },
          gen,
          now,
        )
      : setCondition(
          conditions,
          {
            type: 'ModelReady',
            status: 'False',
            reason: 'PolicyFallback',
            message: `${m.reason}; routing with ${fallback} until a model is ready`,
          },
          gen,
          now,
        );
  } else {
    conditions = conditions.filter((c) => c.type !== 'ModelReady');
  }
  if (w.anomalies) {
    const a = w.anomalies;
    conditions = a.length
      ? setCondition(
          conditions,
          {
            type: 'Degraded',
            status: 'True',
            reason: a.map((x) => x.reason).join(','),
            message: (a[0] as ActiveAnomaly).message,
          },
          gen,
          now,
        )
      : setCondition(
          conditions,
          {
            type: 'Degraded',
            status: 'False',
            reason: 'NoAnomaly',
            message: 'latency and error rate within their usual range',
          },
          gen,
          now,
        );
  }
  // A refusal is its Warning event (XdsRejected) when it happens (data-planes.ts), not on the condition.
  const synced =
    w.dataPlanes && dataPlaneCondition(w.dataPlanes, findCondition(prev.conditions, DATA_PLANE_SYNCED));
  conditions = synced
    ? setCondition(conditions, synced, gen, now)
    : removeCondition(conditions, DATA_PLANE_SYNCED);
  const cachePath = w.dataPlanes && cacheDataPathCondition(w.dataPlanes);
  conditions = cachePath
    ? setCondition(conditions, cachePath, gen, now)
    : removeCondition(conditions, CACHE_DATA_PATH);
  events.push(
    ...conditionWarnings(prev.conditions, conditions, {
      Ready: 'False',
      Invalid: 'True',
      ModelReady: 'False',
    }),
  );

  const p99s = endpoints.map((e) => e.latencyP99Ms).filter((x): x is number => x !== undefined);
  const predicted = ready.filter((e) => e.predictedLatencyMs !== undefined && e.breaker !== 'Open');
  const best = predicted.sort(
    (a, b) => (a.predictedLatencyMs as number) - (b.predictedLatencyMs as number),
  )[0];

  const status: BackendPoolStatus = {
    observedGeneration: gen,
    conditions,
    policy,
    endpoints,
    endpointsSummary: `${ready.length}/${endpoints.length}`,
    openBreakers: open,
    decision: decisionSentence(policy, endpoints, problem),
  };
  if (p99s.length > 0) status.p99 = formatMs(Math.max(...p99s));
  if (best) status.best = `${best.pod ?? best.address} ${formatMs(best.predictedLatencyMs as number)}`;
  if (w.routers !== undefined) status.routers = w.routers;
  if (w.model?.version) {
    status.model = {
      version: w.model.version,
      samples: w.model.samples,
      ...(w.model.holdoutError !== undefined ? { holdoutError: w.model.holdoutError } : {}),
      ...p99Coverage(w.model),
    };
  }
  if (w.routingVersion !== undefined) status.routingVersion = w.routingVersion;
  const dataPlanes = w.dataPlanes && dataPlanesStatus(w.dataPlanes);
  if (dataPlanes) status.dataPlanes = dataPlanes;
  if (w.spec.predictedTimeout && w.deadlines?.length) status.deadlines = w.deadlines.map((d) => ({ ...d }));
  return { status, events };
}

/**
 * status.model.p99Coverage, to 0.1 point and the sample count to two figures (finer would rewrite status
 * at every measurement).
 */
function p99Coverage(m: ModelStatus): {
  p99Coverage?: NonNullable<BackendPoolStatus['model']>['p99Coverage'];
} {
  const r = (x: number) => roundTo(x, 3);
  const c = {
    ...(m.p99CoverageHoldout !== undefined ? { holdout: r(m.p99CoverageHoldout) } : {}),
    ...(m.p99CoverageLive !== undefined
      ? { live: r(m.p99CoverageLive), liveSamples: roundSignificant(m.liveSamples ?? 0, 2) }
      : {}),
  };
  return Object.keys(c).length > 0 ? { p99Coverage: c } : {};
}

/** The weight pushed to xDS clients for an endpoint, when the ADS server holds the pool. */
function xdsWeight(dp: DataPlaneFacts | undefined, address: string): { xdsWeight?: number } {
  const w = dp?.weights.get(address);
  return w !== undefined ? { xdsWeight: w } : {};
}
