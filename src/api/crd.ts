import type { TSchema } from '@sinclair/typebox';
import { BackendPoolSpec, BackendPoolStatus } from './backendpool.js';
import { CacheTierSpec, CacheTierStatus } from './cachetier.js';

/**
 * The CustomResourceDefinitions, built from the TypeBox schemas that also give the TypeScript types.
 * `make crds` writes them to crds/; a test fails when crds/ and this file disagree.
 */
export const GROUP = 'sibyl.dev';
export const VERSION = 'v1alpha1';

export interface CrdNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

const BACKENDPOOL: CrdNames = {
  kind: 'BackendPool',
  plural: 'backendpools',
  singular: 'backendpool',
  shortNames: ['bp'],
};
const CACHETIER: CrdNames = {
  kind: 'CacheTier',
  plural: 'cachetiers',
  singular: 'cachetier',
  shortNames: ['ct'],
};

interface Column {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

/** TypeBox adds symbol keys (dropped by JSON) and nothing Kubernetes rejects; this yields plain JSON. */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function crd(names: CrdNames, spec: TSchema, status: TSchema, columns: Column[], description: string) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { ...names, listKind: `${names.kind}List`, categories: ['sibyl'] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: plain(spec),
                status: plain(status),
              },
            },
          },
        },
      ],
    },
  };
}

const ready = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
} as const;
const age = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' } as const;

const backendPoolCrd = crd(
  BACKENDPOOL,
  BackendPoolSpec,
  BackendPoolStatus,
  [
    { name: 'Policy', type: 'string', jsonPath: '.status.policy', description: 'Balancing policy in force' },
    {
      name: 'Endpoints',
      type: 'string',
      jsonPath: '.status.endpointsSummary',
      description: 'Ready/total endpoints',
    },
    { name: 'Open Breakers', type: 'integer', jsonPath: '.status.openBreakers' },
    {
      name: 'P99',
      type: 'string',
      jsonPath: '.status.p99',
      description: 'Observed p99 latency across routers',
    },
    {
      name: 'Best',
      type: 'string',
      jsonPath: '.status.best',
      description: 'Endpoint with the best predicted latency',
      priority: 1,
    },
    {
      name: 'xDS Clients',
      type: 'integer',
      jsonPath: '.status.dataPlanes.connected',
      description: 'Envoys and proxyless gRPC clients that have the pool',
      priority: 1,
    },
    ready,
    age,
  ],
  'A pool of gRPC backends (a Service or static addresses) and how sibyl routers balance calls over it.',
);

const cacheTierCrd = crd(
  CACHETIER,
  CacheTierSpec,
  CacheTierStatus,
  [
    { name: 'Pools', type: 'string', jsonPath: '.status.pools' },
    { name: 'Hit Ratio', type: 'string', jsonPath: '.status.hitRatioSummary' },
    { name: 'Entries', type: 'integer', jsonPath: '.status.entries' },
    ready,
    age,
  ],
  'A response cache in front of BackendPools: L1 in each router, L2 Redis, L3 local disk, with predictive warming. `kubectl annotate ct NAME sibyl.dev/flush=<new value>` flushes it once per value; deleting it deletes its L2 keys first (finalizer sibyl.dev/cache-cleanup; given up after 5 minutes if Redis does not answer).',
);

export const crds = [backendPoolCrd, cacheTierCrd];
