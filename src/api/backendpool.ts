import { Type, type Static } from '@sinclair/typebox';
import {
  Conditions,
  Duration,
  Enum,
  GrpcMethod,
  GrpcService,
  MapList,
  Name,
  Port,
  SetOf,
  rules,
  IS_DURATION,
} from './schema.js';

/** BackendPool (sibyl.dev/v1alpha1): a pool of gRPC backends and how routers balance over it. docs/architecture.md, "API". */

export const POLICIES = ['Predictive', 'PeakEwma', 'LeastRequest', 'RoundRobin', 'Prequal'] as const;
export type PolicyName = (typeof POLICIES)[number];
export const LIMIT_ALGORITHMS = ['QueueDelay', 'Gradient2', 'AIMD', 'Vegas', 'Fixed'] as const;
export const RETRY_ON = [
  'unavailable',
  'resource-exhausted',
  'deadline-exceeded',
  'internal',
  'unknown',
  'aborted',
] as const;
export const BREAKER_STATES = ['Closed', 'Open', 'HalfOpen'] as const;
export type BreakerStateName = (typeof BREAKER_STATES)[number];

const ADDRESS_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$';

const StaticEndpoint = Type.Object({
  address: Type.String({
    maxLength: 300,
    pattern: ADDRESS_PATTERN,
    description: 'host:port or [ipv6]:port',
    ...rules({
      // Only when there is a numeric port: without one the pattern's message says so, and int() of a
      // host name would fail the rule with a CEL "type conversion error" instead of a useful message.
      rule: "!self.matches(':[0-9]{1,5}$') || (int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535)",
      message: 'port must be from 1 to 65535',
    }),
  }),
  name: Type.Optional(
    Type.String({ maxLength: 253, description: 'A label shown in status instead of the address.' }),
  ),
});

const ServiceRef = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$' }),
  port: Type.Optional(
    Port({
      description: "The Service port's name or number; may be left out when the Service has one port.",
    }),
  ),
});

const Match = Type.Object(
  {
    services: Type.Optional(
      SetOf(GrpcService(), 64, { description: 'gRPC services (package.Service) routed to this pool.' }),
    ),
    methods: Type.Optional(
      SetOf(GrpcMethod(), 256, { description: 'Full method names (/package.Service/Method).' }),
    ),
  },
  rules({
    rule: '(has(self.services) && size(self.services) > 0) || (has(self.methods) && size(self.methods) > 0)',
    message: 'match must name at least one gRPC service or method',
  }),
);

export const Balancing = Type.Object({
  policy: Type.Optional(Enum(POLICIES, { default: 'Predictive' })),
  fallbackPolicy: Type.Optional(
    Enum(['PeakEwma', 'LeastRequest', 'RoundRobin', 'Prequal'] as const, {
      default: 'PeakEwma',
      description: 'Used while the model is missing or rejected.',
    }),
  ),
  exploration: Type.Optional(
    Type.Number({
      minimum: 0,
      maximum: 0.5,
      default: 0.05,
      description:
        "Predictive's exploration rate: the share of calls that may carry a probe, a shadow copy of an idempotentMethods call sent to an endpoint the policy avoids, its answer discarded.",
    }),
  ),
  model: Type.Optional(
    Type.Object({
      retrainInterval: Type.Optional(Duration({ default: '5m', min: '10s', max: '24h' })),
      minSamples: Type.Optional(Type.Integer({ minimum: 10, maximum: 10_000_000, default: 1000 })),
    }),
  ),
});

export const CircuitBreaker = Type.Object({
  failureThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 5 })),
  recoveryTimeout: Type.Optional(Duration({ default: '30s', min: '100ms', max: '1h' })),
  halfOpenMaxCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 3 })),
  maxEjectionPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 50 })),
});

export const Concurrency = Type.Object(
  {
    algorithm: Type.Optional(Enum(LIMIT_ALGORITHMS, { default: 'QueueDelay' })),
    initialLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 20 })),
    minLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1 })),
    maxLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 })),
    targetLatency: Type.Optional(Duration({ min: '1ms', max: '1h' })),
    targetSuccessRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  {
    description:
      'Adaptive concurrency, per router. The bounds describe one endpoint: each endpoint learns its own ' +
      'limit of calls in flight, and the pool admits its learnt per-endpoint limit times the number of ' +
      'endpoints (initialLimit 20 over 10 endpoints starts at 200). Absent: no limit.',
    ...rules(
      {
        rule: '!has(self.minLimit) || !has(self.initialLimit) || self.minLimit <= self.initialLimit',
        message: 'minLimit must not exceed initialLimit',
      },
      {
        rule: '!has(self.initialLimit) || !has(self.maxLimit) || self.initialLimit <= self.maxLimit',
        message: 'initialLimit must not exceed maxLimit',
      },
      {
        rule: '!has(self.minLimit) || !has(self.maxLimit) || self.minLimit <= self.maxLimit',
        message: 'minLimit must not exceed maxLimit',
      },
    ),
  },
);

export const Retries = Type.Object({
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, default: 2 })),
  retryOn: Type.Optional(SetOf(Enum(RETRY_ON), RETRY_ON.length, { default: ['unavailable'] })),
  budgetPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 20 })),
});

export const Hedging = Type.Object({
  enabled: Type.Optional(Type.Boolean({ default: false })),
  delay: Type.Optional(
    Type.String({
      maxLength: 32,
      default: 'Predicted',
      description:
        '"Predicted" (the call\'s own predicted latency at the picked endpoint, at `quantile`) or a fixed duration.',
      ...rules({
        rule: `self == 'Predicted' || ${IS_DURATION}`,
        message: 'must be Predicted or a duration such as 20ms',
      }),
    }),
  ),
  quantile: Type.Optional(
    Type.Number({
      minimum: 0.5,
      maximum: 0.999,
      default: 0.99,
      description:
        "With delay Predicted: the quantile of the call's predicted latency after which it is hedged (0.99: a call slower than 99 in 100 like it). Keep 1 − quantile well below maxPercent: ordinary variation passes it that often, and a copy rarely helps such a call; the rest of the budget goes to calls slower than predicted (an endpoint slow for them, a stall), where it does.",
    }),
  ),
  maxPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 10 })),
});

/**
 * Per-try deadlines from the model: each try gets max(multiplier × its predicted p99, floor), capped at
 * ceiling and at the call's own deadline (docs/reliability.md, "Deadlines").
 */
export const PredictedTimeout = Type.Object(
  {
    multiplier: Type.Optional(
      Type.Number({
        minimum: 1,
        maximum: 100,
        default: 2,
        description: "A try's deadline is this many times its predicted p99 latency.",
      }),
    ),
    floor: Type.Optional(
      Duration({ default: '10ms', min: '1ms', max: '1h', description: 'No try gets a shorter deadline.' }),
    ),
    ceiling: Type.Optional(
      Duration({ min: '1ms', max: '1h', description: "No try gets a longer deadline (none: the call's)." }),
    ),
  },
  rules({
    rule: '!has(self.ceiling) || !has(self.floor) || duration(self.ceiling) >= duration(self.floor)',
    message: 'ceiling must not be below floor',
  }),
);

const Timeout = Type.Object({
  default: Type.Optional(
    Duration({ min: '1ms', max: '1h', description: 'Deadline for calls that carry none.' }),
  ),
  predicted: Type.Optional(PredictedTimeout),
});

export const Telemetry = Type.Object({
  interval: Type.Optional(Duration({ default: '10s', min: '1s', max: '10m' })),
  prometheus: Type.Optional(
    Type.Object({
      port: Port(),
      path: Type.Optional(Type.String({ maxLength: 256, pattern: '^/', default: '/metrics' })),
      cpuSeries: Type.Optional(Type.String({ maxLength: 256, default: 'process_cpu_seconds_total' })),
      memorySeries: Type.Optional(Type.String({ maxLength: 256, default: 'process_resident_memory_bytes' })),
      latencySeries: Type.Optional(
        Type.String({
          maxLength: 256,
          default: 'grpc_server_handling_seconds',
          description:
            'A histogram of the time calls took to handle, in seconds (go-grpc-middleware names it so).',
        }),
      ),
      handledSeries: Type.Optional(
        Type.String({
          maxLength: 256,
          default: 'grpc_server_handled_total',
          description:
            'A counter of calls handled, by gRPC status in the grpc_code label (errors come from it).',
        }),
      ),
      startedSeries: Type.Optional(
        Type.String({
          maxLength: 256,
          default: 'grpc_server_started_total',
          description: 'A counter of calls started: less those handled, the calls in flight.',
        }),
      ),
    }),
  ),
  orca: Type.Optional(
    Type.Boolean({
      default: true,
      description:
        'Use ORCA load reports: those routers relay from trailers, and those backends serve out of band (OpenRcaService), subscribed to by the operator.',
    }),
  ),
  orcaInterval: Type.Optional(
    Duration({
      min: '1s',
      max: '10m',
      description: 'How often backends send out-of-band ORCA reports; interval when not set.',
    }),
  ),
  metricsApi: Type.Optional(Type.Boolean({ default: true })),
});

export const BackendPoolSpec = Type.Object(
  {
    service: Type.Optional(ServiceRef),
    endpoints: Type.Optional(MapList(StaticEndpoint, ['address'], 1000, { minItems: 1 })),
    match: Match,
    idempotentMethods: Type.Optional(
      SetOf(GrpcMethod(), 256, {
        description: 'Methods safe to retry after a response began, and to hedge.',
      }),
    ),
    balancing: Type.Optional(Balancing),
    circuitBreaker: Type.Optional(CircuitBreaker),
    concurrency: Type.Optional(Concurrency),
    retries: Type.Optional(Retries),
    hedging: Type.Optional(Hedging),
    timeout: Type.Optional(Timeout),
    telemetry: Type.Optional(Telemetry),
    cacheTierRef: Type.Optional(Type.Object({ name: Name() })),
  },
  rules(
    {
      rule: 'has(self.service) != has(self.endpoints)',
      message:
        'set exactly one of service (a Service whose EndpointSlices list the backends) and endpoints (static addresses)',
    },
    {
      rule: '!has(self.hedging) || !has(self.hedging.enabled) || !self.hedging.enabled || (has(self.idempotentMethods) && size(self.idempotentMethods) > 0)',
      message: 'hedging needs idempotentMethods: only idempotent methods may be sent twice',
    },
  ),
);

export const EndpointStatus = Type.Object({
  address: Type.String({ maxLength: 300 }),
  pod: Type.Optional(Type.String({ maxLength: 253 })),
  ready: Type.Boolean(),
  cpu: Type.Optional(Type.Number({ description: 'CPU in cores.' })),
  memoryBytes: Type.Optional(Type.Integer()),
  inflight: Type.Optional(Type.Integer()),
  latencyP50Ms: Type.Optional(Type.Number()),
  latencyP99Ms: Type.Optional(Type.Number()),
  predictedLatencyMs: Type.Optional(Type.Number()),
  weight: Type.Optional(Type.Number()),
  breaker: Type.Optional(Enum(BREAKER_STATES)),
  concurrencyLimit: Type.Optional(Type.Integer()),
  xdsWeight: Type.Optional(
    Type.Integer({
      minimum: 1,
      description:
        'The endpoint weight pushed to xDS clients: estimated calls/s (concurrency over service time), quantised, with hysteresis.',
    }),
  ),
});

/** xDS client families, from the node's user agent. */
const XDS_CLIENT_KINDS = ['envoy', 'grpc-go', 'grpc-js', 'grpc', 'unknown'] as const;

const Count = () => Type.Optional(Type.Integer({ minimum: 0 }));
const Version = () => Type.Optional(Type.String({ maxLength: 64 }));

const XdsClientStatus = Type.Object({
  node: Type.String({ maxLength: 253, description: "The client's xDS node id." }),
  kind: Enum(XDS_CLIENT_KINDS),
  synced: Type.Boolean({ description: "It has ACKed the pool's current resources." }),
  acked: Type.Optional(
    Type.Object(
      { LDS: Version(), RDS: Version(), CDS: Version(), EDS: Version() },
      { description: 'The version it last ACKed, by resource type.' },
    ),
  ),
  lastNack: Type.Optional(
    Type.Object({
      type: Type.String({ maxLength: 8 }),
      version: Type.String({ maxLength: 64 }),
      detail: Type.String({ maxLength: 1024, description: "The client's error detail." }),
      time: Type.String({ format: 'date-time' }),
    }),
  ),
});

/** The most clients status lists one by one; the counts cover every client. */
export const MAX_LISTED_XDS_CLIENTS = 50;

const DataPlanesStatus = Type.Object({
  connected: Type.Integer({ description: 'xDS clients connected that have this pool.' }),
  byKind: Type.Object(
    {
      envoy: Count(),
      'grpc-go': Count(),
      'grpc-js': Count(),
      grpc: Count(),
      unknown: Count(),
    },
    { description: 'Connected clients by kind.' },
  ),
  stockPolicy: Type.Optional(
    Type.String({
      maxLength: 32,
      description:
        "The stock policy proxyless clients fall back to below sibyl's own (ring_hash or least_request).",
    }),
  ),
  clients: Type.Optional(
    Type.Array(XdsClientStatus, {
      maxItems: MAX_LISTED_XDS_CLIENTS,
      description: 'Clients one by one, those out of sync first.',
    }),
  ),
  unlisted: Type.Optional(Type.Integer({ description: 'Clients beyond the list.' })),
});

/** How many per-method deadlines status lists at most (src/operator/deadlines.ts MAX_DEADLINES). */
const MAX_LISTED_DEADLINES = 256;

const DEADLINE_SOURCES = ['Model', 'Observed'] as const;

const MethodDeadlineStatus = Type.Object({
  method: Type.String({ maxLength: 512, description: 'The gRPC method, /package.Service/Method.' }),
  predictedP99Ms: Type.Number({ description: "A typical call's p99 latency, ms (two figures)." }),
  perTryTimeoutMs: Type.Integer({
    minimum: 1,
    description: "Each try's deadline: clamp(multiplier × p99, floor, ceiling), ms.",
  }),
  source: Enum(DEADLINE_SOURCES, {
    description:
      "Model: the latency model's p99 for the method on the pool's endpoints; Observed: the calls' own p99 (routers' and Envoys' reports, else the backends' histograms).",
  }),
});

export const BackendPoolStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  conditions: Type.Optional(Conditions()),
  policy: Type.Optional(Type.String({ maxLength: 64 })),
  model: Type.Optional(
    Type.Object({
      version: Type.Optional(Type.String({ maxLength: 128 })),
      samples: Type.Optional(Type.Integer()),
      holdoutError: Type.Optional(Type.Number()),
      p99Coverage: Type.Optional(
        Type.Object(
          {
            holdout: Type.Optional(
              Type.Number({
                description: 'On the half of the training holdout the calibration did not use.',
              }),
            ),
            live: Type.Optional(
              Type.Number({ description: "On the routers' calls since this model was installed." }),
            ),
            liveSamples: Type.Optional(Type.Integer()),
          },
          { description: 'Share of calls at or below their predicted p99 latency (goal 0.99).' },
        ),
      ),
    }),
  ),
  endpoints: Type.Optional(Type.Array(EndpointStatus, { maxItems: 1000 })),
  endpointsSummary: Type.Optional(
    Type.String({ maxLength: 32, description: 'ready/total, for kubectl get.' }),
  ),
  openBreakers: Type.Optional(Type.Integer()),
  p99: Type.Optional(Type.String({ maxLength: 32 })),
  best: Type.Optional(
    Type.String({ maxLength: 300, description: 'The endpoint with the best predicted latency.' }),
  ),
  decision: Type.Optional(Type.String({ maxLength: 4096 })),
  routers: Type.Optional(Type.Integer()),
  routingVersion: Type.Optional(Type.Integer()),
  dataPlanes: Type.Optional(DataPlanesStatus),
  deadlines: Type.Optional(
    Type.Array(MethodDeadlineStatus, {
      maxItems: MAX_LISTED_DEADLINES,
      description:
        "With spec.timeout.predicted: the per-try deadline in force for each method called within the telemetry window (Envoy routes' per_try_timeout).",
    }),
  ),
});

export type BackendPoolSpec = Static<typeof BackendPoolSpec>;
export type BackendPoolStatus = Static<typeof BackendPoolStatus>;
export type EndpointStatus = Static<typeof EndpointStatus>;
export type DataPlanesStatus = Static<typeof DataPlanesStatus>;
export type XdsClientStatus = Static<typeof XdsClientStatus>;
export type StaticEndpoint = Static<typeof StaticEndpoint>;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string | Date;
  creationTimestamp?: string | Date;
}

export interface BackendPool {
  apiVersion: 'sibyl.dev/v1alpha1';
  kind: 'BackendPool';
  metadata: ObjectMeta;
  spec: BackendPoolSpec;
  status?: BackendPoolStatus;
}
