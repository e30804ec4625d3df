import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/crd.js';
import { seededRandom } from '../../util/clock.js';
import { parseDuration } from '../../util/duration.js';
import { quantile as percentile } from '../sim/metrics.js';

/**
 * `sibyl bench scale`: the operator on a local control plane with K pools × M endpoints. Measures
 * the delay from an EndpointSlice change to the pool's status showing it (p50, p99), status writes per
 * minute under churn, and the operator's resident memory. The operator runs as its own process.
 */
export interface ScaleResult {
  pools: number;
  endpoints: number;
  statusIntervalMs: number;
  convergeMs: number;
  changes: number;
  observed: number;
  delayMs: { p50: number; p99: number; max: number };
  statusWritesPerMinute: number;
  changesPerMinute: number;
  operatorRssMiB: number;
}

const ROOT = new URL('../../../', import.meta.url).pathname;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      pools: { type: 'string', default: '500' },
      endpoints: { type: 'string', default: '20' },
      duration: { type: 'string', default: '60s' },
      rate: { type: 'string', default: '10', short: 'r' },
      'status-interval': { type: 'string', default: '5s' },
      hot: { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
    },
  });
  const r = await runScale({
    pools: Number(v.pools),
    endpoints: Number(v.endpoints),
    durationMs: parseDuration(v.duration as string),
    changesPerSecond: Number(v.rate),
    statusInterval: v['status-interval'] as string,
    hotPools: Number(v.hot),
  });
  if (v.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `operator scale: ${r.pools} pools × ${r.endpoints} endpoints, status interval ${r.statusIntervalMs} ms`,
    );
    console.log(`  initial convergence        ${(r.convergeMs / 1000).toFixed(1)} s`);
    console.log(
      `  slice change → status      p50 ${r.delayMs.p50.toFixed(0)} ms, p99 ${r.delayMs.p99.toFixed(0)} ms, max ${r.delayMs.max.toFixed(0)} ms (${r.observed} of ${r.changes} changes)`,
    );
    console.log(`  slice changes per minute   ${r.changesPerMinute.toFixed(0)}`);
    console.log(`  status writes per minute   ${r.statusWritesPerMinute.toFixed(0)}`);
    console.log(`  operator resident memory   ${r.operatorRssMiB.toFixed(0)} MiB`);
  }
  return 0;
}

interface Opts {
  pools: number;
  endpoints: number;
  durationMs: number;
  changesPerSecond: number;
  statusInterval: string;
  /** Churn only these many pools, changing them again before status catches up (shows batching). */
  hotPools?: number;
}

function cluster(dir: string, cmd: string): string {
  return execFileSync(join(ROOT, 'hack/local-cluster.sh'), [cmd], {
    encoding: 'utf8',
    env: { ...process.env, SIBYL_CLUSTER_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

function slice(name: string, m: number, ready: number): k8s.V1EndpointSlice {
  return {
    metadata: { name, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'FQDN',
    ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
    endpoints: Array.from({ length: m }, (_, j) => ({
      addresses: [`e${j}.${name}.localhost`],
      conditions: { ready: j < ready },
      targetRef: { kind: 'Pod', name: `${name}-${j}`, namespace: 'bench' },
    })),
  };
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

export async function runScale(o: Opts): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-scale-'));
  const env = cluster(dir, 'up');
  const kubeconfig = join(dir, 'kubeconfig');
  const bin = /PATH=([^:]+):/.exec(env)?.[1] ?? '';
  let op: ChildProcess | undefined;
  try {
    execFileSync(join(bin, 'kubectl'), ['--kubeconfig', kubeconfig, 'apply', '-f', join(ROOT, 'crds')], {
      stdio: 'ignore',
    });
    execFileSync(
      join(bin, 'kubectl'),
      ['--kubeconfig', kubeconfig, 'wait', '--for=condition=Established', 'crd', '--all'],
      { stdio: 'ignore' },
    );
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const disc = kc.makeApiClient(k8s.DiscoveryV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: 'bench' } } });
    const names = Array.from({ length: o.pools }, (_, i) => `p${i}`);
    for (let i = 0; ; i++) {
      try {
        await custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: 'bench',
          plural: 'backendpools',
        });
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await pool(names, 16, async (n) => {
      await core.createNamespacedService({
        namespace: 'bench',
        body: { metadata: { name: n }, spec: { clusterIP: 'None', ports: [{ name: 'grpc', port: 50051 }] } },
      });
      await disc.createNamespacedEndpointSlice({
        namespace: 'bench',
        body: slice(n, o.endpoints, o.endpoints),
      });
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: 'bench',
        plural: 'backendpools',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'BackendPool',
          metadata: { name: n },
          spec: { service: { name: n }, match: { services: [`bench.${n}`] } },
        },
      });
    });

    // Watch status as a user would: the time a pool's status first shows the wanted summary.
    const summaries = new Map<string, string>();
    const waiters = new Map<
      string,
      { want: string; t0: number; done: (ms: number) => void; drop: () => void }
    >();
    const informer = k8s.makeInformer(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/bench/backendpools`,
      () =>
        custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: 'bench',
          plural: 'backendpools',
        }) as never,
    );
    const seen = (obj: { metadata?: { name?: string }; status?: { endpointsSummary?: string } }) => {
      const n = obj.metadata?.name ?? '';
      const s = obj.status?.endpointsSummary ?? '';
      summaries.set(n, s);
      const w = waiters.get(n);
      if (w && w.want === s) {
        waiters.delete(n);
        w.done(performance.now() - w.t0);
      }
    };
    informer.on('add', seen as never);
    informer.on('update', seen as never);
    let finished = false;
    informer.on('error', () => setTimeout(() => finished || void informer.start(), 500));
    await informer.start();

    const metricsPort = 20000 + Math.floor(Math.random() * 20000);
    const t0 = performance.now();
    op = spawn(
      process.execPath,
      [
        join(ROOT, 'dist/cli/main.js'),
        'operator',
        '--kubeconfig',
        kubeconfig,
        '--namespace',
        'bench',
        '--leader-elect',
        'false',
        '--metrics-addr',
        `127.0.0.1:${metricsPort}`,
        '--status-interval',
        o.statusInterval,
      ],
      { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, SIBYL_LOG_LEVEL: 'warn' } },
    );
    const full = `${o.endpoints}/${o.endpoints}`;
    while ([...names].some((n) => summaries.get(n) !== full)) {
      if (performance.now() - t0 > 600_000) throw new Error('the operator did not converge in 10 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
    const convergeMs = performance.now() - t0;

    const writes0 = await metric(metricsPort, 'sibyl_status_writes_total');
    const random = seededRandom(1);
    const lastSet = new Map<string, string>();
    const delays: number[] = [];
    let changes = 0;
    const start = performance.now();
    const gap = 1000 / o.changesPerSecond;
    const pending: Promise<void>[] = [];
    while (performance.now() - start < o.durationMs) {
      const hot = o.hotPools ? Math.min(o.hotPools, names.length) : 0;
      const n = names[Math.floor(random() * (hot || names.length))] as string;
      if (hot) waiters.get(n)?.drop();
      if (hot || !waiters.has(n)) {
        const current = Number((lastSet.get(n) ?? summaries.get(n) ?? full).split('/')[0]);
        let ready = 1 + Math.floor(random() * o.endpoints);
        if (ready === current) ready = ready === o.endpoints ? ready - 1 : ready + 1;
        const want = `${ready}/${o.endpoints}`;
        lastSet.set(n, want);
        changes++;
        pending.push(
          new Promise<void>((resolve) => {
            const drop = () => (waiters.delete(n), resolve());
            waiters.set(n, { want, t0: performance.now(), done: (ms) => (delays.push(ms), resolve()), drop });
            setTimeout(resolve, 60_000);
          }),
        );
        await disc.replaceNamespacedEndpointSlice({
          name: n,
          namespace: 'bench',
          body: slice(n, o.endpoints, ready),
        });
      }
      await new Promise((r) => setTimeout(r, gap));
    }
    const elapsedMin = (performance.now() - start) / 60_000;
    await Promise.all(pending);
    const writes = (await metric(metricsPort, 'sibyl_status_writes_total')) - writes0;
    const rss =
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${op.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    finished = true;
    await informer.stop();
    delays.sort((a, b) => a - b);
    return {
      pools: o.pools,
      endpoints: o.endpoints,
      statusIntervalMs: parseDuration(o.statusInterval),
      convergeMs,
      changes,
      observed: delays.length,
      delayMs: {
        p50: percentile(delays, 0.5),
        p99: percentile(delays, 0.99),
        max: delays[delays.length - 1] ?? NaN,
      },
      statusWritesPerMinute: writes / elapsedMin,
      changesPerMinute: changes / elapsedMin,
      operatorRssMiB: rss,
    };
  } finally {
    op?.kill('SIGTERM');
    cluster(dir, 'down');
  }
}
