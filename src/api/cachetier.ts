import { Type, type Static } from '@sinclair/typebox';
import {
  Bytes,
  Conditions,
  Duration,
  Enum,
  GrpcMethod,
  MapList,
  Name,
  SetOf,
  StringMap,
  rules,
} from './schema.js';
import type { ObjectMeta } from './backendpool.js';

/** CacheTier (sibyl.dev/v1alpha1): a response cache in front of pools, L1/L2/L3 with warming. docs/architecture.md, "API"; docs/architecture.md, "Cache tiers". */

const REDIS_MODES = ['Standalone', 'Sentinel', 'Cluster'] as const;

const LabelSelectorRequirement = Type.Object({
  key: Type.String({ minLength: 1, maxLength: 317 }),
  operator: Enum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
  values: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 64 })),
});

const LabelSelector = Type.Object({
  matchLabels: Type.Optional(StringMap({ maxProperties: 64 })),
  matchExpressions: Type.Optional(Type.Array(LabelSelectorRequirement, { maxItems: 32 })),
});

const CachedMethod = Type.Object({
  method: GrpcMethod(),
  ttl: Type.Optional(Duration({ default: '60s', min: '1s', max: '168h' })),
});

export const CacheTierSpec = Type.Object(
  {
    pools: Type.Optional(
      SetOf(Name({ maxLength: 253 }), 64, {
        minItems: 1,
        description:
          "BackendPools served, by name. A pool's spec.cacheTierRef overrides this; of two tiers selecting one pool the older serves it and the other says so in its PoolConflict condition.",
      }),
    ),
    poolSelector: Type.Optional(
      Type.Object(LabelSelector.properties, {
        description: 'BackendPools served, by label (same precedence as pools).',
      }),
    ),
    methods: MapList(CachedMethod, ['method'], 256, {
      minItems: 1,
      description: 'Idempotent unary methods whose OK responses may be cached.',
    }),
    keyHeaders: Type.Optional(
      SetOf(Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-z0-9][a-z0-9-_.]*$' }), 16, {
        description: 'Request metadata (lower-case names) that is part of the cache key.',
      }),
    ),
    l1: Type.Optional(
      Type.Object({
        maxBytes: Type.Optional(Bytes({ default: '64Mi' })),
        maxEntries: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, default: 100_000 })),
        ttl: Type.Optional(Duration({ min: '1s', max: '168h' })),
      }),
    ),
    l2: Type.Optional(
      Type.Object({
        redis: Type.Object(
          {
            url: Type.Optional(Type.String({ maxLength: 1024, pattern: '^rediss?://' })),
            secretRef: Type.Optional(
              Type.Object(
                {
                  name: Name(),
                  key: Type.Optional(Type.String({ maxLength: 253, default: 'url' })),
                },
                {
                  description:
                    "A Secret in the tier's namespace holding the URL; the operator reads it and sends the URL to routers.",
                },
              ),
            ),
            mode: Type.Optional(Enum(REDIS_MODES, { default: 'Standalone' })),
            sentinelName: Type.Optional(Type.String({ maxLength: 253 })),
          },
          rules(
            { rule: 'has(self.url) != has(self.secretRef)', message: 'set exactly one of url and secretRef' },
            {
              rule: "!has(self.mode) || self.mode != 'Sentinel' || has(self.sentinelName)",
              message: 'Sentinel mode needs sentinelName (the master group name)',
            },
          ),
        ),
        ttl: Type.Optional(Duration({ min: '1s', max: '720h' })),
        timeout: Type.Optional(Duration({ default: '50ms', min: '1ms', max: '10s' })),
      }),
    ),
    l3: Type.Optional(
      Type.Object({
        path: Type.String({
          minLength: 2,
          maxLength: 1024,
          pattern: '^/',
          description:
            'A directory in the router pods, one per tier (the chart mounts a volume at /var/cache/sibyl: router.diskCache); it is kept across router restarts.',
        }),
        maxBytes: Type.Optional(Bytes({ default: '1Gi' })),
        ttl: Type.Optional(Duration({ min: '1s', max: '720h' })),
      }),
    ),
    warming: Type.Optional(
      Type.Object({
        enabled: Type.Optional(Type.Boolean({ default: true })),
        window: Type.Optional(Duration({ default: '60s', min: '1s', max: '24h' })),
        horizon: Type.Optional(Duration({ default: '60s', min: '1s', max: '24h' })),
        topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 100 })),
        minFrequency: Type.Optional(Type.Number({ minimum: 0, default: 2 })),
        budgetPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 10 })),
      }),
    ),
  },
  rules({
    rule: 'has(self.pools) != has(self.poolSelector)',
    message: 'set exactly one of pools (names) and poolSelector (labels)',
  }),
);

const TierRatio = Type.Object(
  {
    l1: Type.Optional(Type.Number()),
    l2: Type.Optional(Type.Number()),
    l3: Type.Optional(Type.Number()),
    overall: Type.Optional(Type.Number()),
  },
  {
    description:
      "Share of the routers' lookups over the last minute answered by each tier, and by any (l1 + l2 + l3).",
  },
);

export const CacheTierStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  conditions: Type.Optional(Conditions()),
  pools: Type.Optional(
    Type.Array(Type.String({ maxLength: 253 }), {
      maxItems: 1000,
      description: 'The pools this tier serves.',
    }),
  ),
  hitRatio: Type.Optional(TierRatio),
  hitRatioSummary: Type.Optional(Type.String({ maxLength: 32, description: 'e.g. 87% (L1 71%, L2 16%).' })),
  entries: Type.Optional(Type.Integer({ description: "Entries in the routers' L1 and L3, summed." })),
  bytes: Type.Optional(Type.Integer({ description: "Bytes in the routers' L1 and L3, summed." })),
  warmedKeys: Type.Optional(Type.Integer({ description: "Keys the routers' warmers prefetched." })),
  prefetchAccuracy: Type.Optional(
    Type.Number({ description: 'Prefetched keys later hit ÷ keys prefetched.' }),
  ),
  routers: Type.Optional(Type.Integer({ description: 'Routers reporting on these pools.' })),
  flushedToken: Type.Optional(
    Type.String({ maxLength: 253, description: 'The sibyl.dev/flush annotation value last acted on.' }),
  ),
});

export type CacheTierSpec = Static<typeof CacheTierSpec>;
export type CacheTierStatus = Static<typeof CacheTierStatus>;

export interface CacheTier {
  apiVersion: 'sibyl.dev/v1alpha1';
  kind: 'CacheTier';
  metadata: ObjectMeta;
  spec: CacheTierSpec;
  status?: CacheTierStatus;
}
