/** The demo's Kubernetes objects, as kubectl would take them. */

export interface DemoBackend {
  name: string;
  port: number;
  metrics: string;
}

export function serviceYaml(ns: string, name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { clusterIP: 'None', ports: [{ name: 'grpc', port: 50051 }] },
  });
}

/**
 * One FQDN EndpointSlice per backend: the API server refuses loopback IPs in slices, so each backend
 * is listed as NAME.localhost, which sibyl resolves to 127.0.0.1 (RFC 6761).
 */
export function sliceJson(ns: string, service: string, b: DemoBackend): string {
  return JSON.stringify({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service}-${b.name}`,
      namespace: ns,
      labels: { 'kubernetes.io/service-name': service },
    },
    addressType: 'FQDN',
    ports: [{ name: 'grpc', port: b.port, protocol: 'TCP' }],
    endpoints: [
      {
        addresses: [`${b.name}.localhost`],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: b.name, namespace: ns },
      },
    ],
  });
}

export function poolJson(ns: string, name: string, service: string, policy: string): string {
  return JSON.stringify({
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'BackendPool',
    metadata: { name, namespace: ns },
    spec: {
      service: { name: service, port: 'grpc' },
      match: { services: ['sibyl.demo.v1.Demo'] },
      idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
      balancing: { policy, fallbackPolicy: 'PeakEwma', model: { retrainInterval: '30s', minSamples: 500 } },
      circuitBreaker: {
        failureThreshold: 5,
        recoveryTimeout: '10s',
        halfOpenMaxCalls: 3,
        maxEjectionPercent: 50,
      },
      retries: { maxAttempts: 2, retryOn: ['unavailable'], budgetPercent: 20 },
      // Each try's deadline: twice its predicted p99 (the seed's query optimiser), at least 100 ms and
      // at most 250 ms (a quarter of the call's 1 s, so a retry fits); a try past it is cut and sent
      // elsewhere. The floor is ten times the slowest healthy backend's 10 ms because this 2-core
      // machine, shared, stalls a process for tens of ms: a run with a 30 ms floor at load average 6–7
      // had the routers cut 738 tries in 6,000 calls, and a cut try counts against its endpoint's
      // breaker. Envoy's Echo route gets the per-method figure (status.deadlines: the p99 on the
      // slowest ready endpoint, b5, so mostly the ceiling) as its per_try_timeout.
      timeout: { default: '1s', predicted: { multiplier: 2, floor: '100ms', ceiling: '250ms' } },
      telemetry: { interval: '2s', orca: true, metricsApi: false },
    },
  });
}

/** The demo's CacheTier: Echo answers cached for 10 s (so warming refreshes hot keys within a phase), a small L1 per router, L2 in the demo's Redis. */
export function cacheTierJson(ns: string, name: string, pool: string, redisUrl: string): string {
  return JSON.stringify({
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'CacheTier',
    metadata: { name, namespace: ns },
    spec: {
      pools: [pool],
      methods: [{ method: '/sibyl.demo.v1.Demo/Echo', ttl: '10s' }],
      l1: { maxEntries: 300, maxBytes: '16Mi' },
      l2: { redis: { url: redisUrl }, ttl: '2m', timeout: '50ms' },
      warming: { enabled: true, window: '10s', horizon: '10s', topK: 100, budgetPercent: 10 },
    },
  });
}
