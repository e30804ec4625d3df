import type * as k8s from '@kubernetes/client-node';
import type { ControlClient } from '../../src/control/client.js';
import { Operator, type OperatorOptions } from '../../src/operator/operator.js';
import { linkRouter } from '../../src/router/control-link.js';
import { Router } from '../../src/router/router.js';
import { makeLogger } from '../../src/util/log.js';
import { quiet } from './grpc.js';
import { loadKubeConfig } from '../../src/kube/config.js';

/** An operator in this process against the test control plane, watching one namespace. */
/**
 * Operators this test file started and may not have stopped (a test that fails before its own
 * `stop()`): stopped after the file, so no informer or lease timer outlives it and keeps jest from
 * exiting. Stopping an operator twice is harmless.
 */
const started = new Set<Operator>();
afterAll(async () => {
  for (const op of started) {
    try {
      await op.stop();
    } catch (e) {
      console.warn(`[test] stopping a leftover operator: ${(e as Error).message}`);
    }
  }
  started.clear();
});

export async function startOperator(
  ns: string,
  extra: Partial<OperatorOptions> & { kc?: k8s.KubeConfig } = {},
): Promise<Operator> {
  const op = new Operator({
    kc: extra.kc ?? loadKubeConfig(process.env.KUBECONFIG), // as `sibyl operator` loads it: keep-alive
    log: makeLogger('operator', process.env.SIBYL_TEST_LOG_LEVEL ?? 'silent'),
    namespace: ns,
    statusIntervalMs: 300,
    ...extra,
  });
  started.add(op);
  await op.start();
  return op;
}

/** The operator's informers, as its sibyl_informer_restarts_total{informer} names them. */
export const INFORMERS = ['backendpools', 'cachetiers', 'services', 'endpointslices', 'pods'] as const;

/** What prom-client's metrics (Counter, Gauge, Histogram) give on get(). */
interface Readable {
  get(): Promise<{
    values: Array<{ value: number; labels: Partial<Record<string, string | number>>; metricName?: string }>;
  }>;
}

/**
 * The sum of a metric's series whose labels include `labels`; for a histogram, of its `_count` series
 * (how many observations). A test reads the operator's own counters with this to know that work it
 * waits for has happened (a reconcile finished, a status write was skipped).
 */
export async function metricValue(m: Readable, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await m.get();
  const histogram = values.some((v) => v.metricName?.endsWith('_bucket'));
  let sum = 0;
  for (const v of values) {
    if (histogram && !v.metricName?.endsWith('_count')) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

/** Reconciles of `kind` the operator has finished (its sibyl_reconcile_duration_seconds count). */
export function reconciles(op: Operator, kind: 'BackendPool' | 'CacheTier'): Promise<number> {
  return metricValue(op.metrics.reconcileDuration, { kind });
}

/**
 * sibyl routers in this process, each subscribed to the operator's control API on `port` over TLS
 * (trusting `ca`) with a ServiceAccount token, serving the pools of `namespace`; with `advertise`, each
 * offers its address to data planes (router --advertise).
 */
export async function subscribedRouters(
  ids: readonly string[],
  o: { port: number; ca: Buffer; token: string; namespace: string; advertise?: boolean },
): Promise<{ routers: Router[]; links: ControlClient[] }> {
  const routers: Router[] = [];
  const links: ControlClient[] = [];
  for (const id of ids) {
    const router = await Router.start({ defaultMetrics: false, log: quiet() });
    routers.push(router);
    links.push(
      linkRouter(router, {
        address: `localhost:${o.port}`,
        ca: o.ca,
        token: async () => o.token,
        routerId: id,
        namespace: o.namespace,
        version: 'test',
        // Envoy reaches the router where it listens (127.0.0.1:PORT).
        ...(o.advertise ? { advertise: router.address } : {}),
        log: makeLogger('router', 'silent'),
      }),
    );
  }
  return { routers, links };
}
