import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../../cli/flags.js';
import { seededRandom } from '../../util/clock.js';
import { parseDuration } from '../../util/duration.js';
import { errorMessage } from '../../util/errors.js';
import { freePort } from '../../util/net.js';
import { quantile as percentile } from '../sim/metrics.js';
import { watchUsage } from './proc-usage.js';
import { stop, track, type Child } from './processes.js';
import { NAMESPACE, ROOT, StatusWatch, cluster, createPools, metric, slice } from './scale-cluster.js';
import { formatScale, type ScaleResult } from './scale-report.js';
import { connectFleet, type XdsFleet } from './scale-xds.js';

/**
 * `sibyl bench scale`: the operator on a local control plane with K pools × M endpoints. Measures
 * the delay from an EndpointSlice change to the pool's status showing it (p50, p99), status writes per
 * minute under churn, and the operator's CPU and resident memory. The operator runs as its own
 * process. With xDS clients (scale-xds.ts) it also serves ADS on its control port, and the delay from
 * a slice change to every client that dials the pool having acknowledged an assignment showing it is
 * measured too (issue 16's target: p99 ≤ 1 s).
 */

const HELP = `usage: sibyl bench scale [flags]

The operator as its own process on a local control plane (hack/local-cluster.sh) with K pools × M
endpoints; EndpointSlice changes at a fixed rate, each awaited on the pool's status and, with xDS
clients, on every simulated proxyless gRPC client that dials the pool. Build first.

  --pools K                 BackendPools, each with a Service and one EndpointSlice (default 500)
  --endpoints M             endpoints per slice (default 20)
  --duration D              how long slices are changed (default 60s)
  --rate N, -r N            slice changes per second, to pools not still awaited (default 10)
  --status-interval D       the operator's --status-interval (default 5s)
  --hot N                   churn only N pools, changing each again before status shows it (default 0: all)
  --xds-clients N           simulated proxyless ADS clients on the operator's control port (default 200;
                            0: none, and the operator serves no control API)
  --xds-pools-per-client K  pools each client dials, consecutive from a per-client offset (default 25)
  --operator-concurrency N  the operator's --concurrency, reconciles at once (default: its own, 4)
  --cpu-prof DIR            profile the operator (node --cpu-prof), written to DIR when it stops
  --json                    the result as JSON`;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(
    argv,
    {
      pools: { type: 'string', default: '500' },
      endpoints: { type: 'string', default: '20' },
      duration: { type: 'string', default: '60s' },
      rate: { type: 'string', default: '10', short: 'r' },
      'status-interval': { type: 'string', default: '5s' },
      hot: { type: 'string', default: '0' },
      'xds-clients': { type: 'string', default: '200' },
      'xds-pools-per-client': { type: 'string', default: '25' },
      'cpu-prof': { type: 'string' },
      'operator-concurrency': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    HELP,
  );
  if (!v) return 0;
  const r = await runScale({
    pools: Number(v.pools),
    endpoints: Number(v.endpoints),
    durationMs: parseDuration(v.duration as string),
    changesPerSecond: Number(v.rate),
    statusInterval: v['status-interval'] as string,
    hotPools: Number(v.hot),
    xdsClients: Number(v['xds-clients']),
    xdsPoolsPerClient: Number(v['xds-pools-per-client']),
    ...(v['cpu-prof'] ? { cpuProfDir: v['cpu-prof'] } : {}),
    ...(v['operator-concurrency'] ? { operatorConcurrency: Number(v['operator-concurrency']) } : {}),
  });
  if (v.json) console.log(JSON.stringify(r));
  else console.log(formatScale(r));
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
  /** Simulated proxyless xDS clients on the operator's ADS (0 or absent: none, and no control API). */
  xdsClients?: number;
  xdsPoolsPerClient?: number;
  /** Run the operator under node --cpu-prof, its profile written here when it stops. */
  cpuProfDir?: string;
  operatorConcurrency?: number;
}

const stats = (sorted: number[]) => ({
  p50: percentile(sorted, 0.5),
  p99: percentile(sorted, 0.99),
  max: sorted[sorted.length - 1] ?? NaN,
});

export async function runScale(o: Opts): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-scale-'));
  const env = cluster(dir, 'up');
  const kubeconfig = join(dir, 'kubeconfig');
  const bin = /PATH=([^:]+):/.exec(env)?.[1] ?? '';
  let op: Child | undefined;
  let fleet: XdsFleet | undefined;
  let status: StatusWatch | undefined;
  const xdsClients = o.xdsClients ?? 0;
  try {
    const names = Array.from({ length: o.pools }, (_, i) => `p${i}`);
    const { kc, disc, custom } = await createPools(kubeconfig, bin, names, o.endpoints);
    status = await StatusWatch.start(kc, custom);
    const { summaries, waiters } = status;

    const metricsPort = 20000 + Math.floor(Math.random() * 20000);
    const controlAddr = `127.0.0.1:${await freePort()}`;
    // ADS on the control API, plaintext and without tokens: a local run (src/cli/operator.ts).
    const control = xdsClients
      ? [
          '--control-addr',
          controlAddr,
          '--control-insecure',
          '--xds-allow-unauthenticated',
          '--allowed-routers',
          `${NAMESPACE}/*`,
        ]
      : [];
    const t0 = performance.now();
    op = track(
      'operator',
      spawn(
        process.execPath,
        [
          ...(o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : []),
          join(ROOT, 'dist/cli/main.js'),
          'operator',
          '--kubeconfig',
          kubeconfig,
          '--namespace',
          NAMESPACE,
          '--leader-elect',
          'false',
          '--metrics-addr',
          `127.0.0.1:${metricsPort}`,
          '--status-interval',
          o.statusInterval,
          ...(o.operatorConcurrency ? ['--concurrency', String(o.operatorConcurrency)] : []),
          ...control,
        ],
        { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, SIBYL_LOG_LEVEL: 'warn' } },
      ),
    );
    const full = `${o.endpoints}/${o.endpoints}`;
    while ([...names].some((n) => summaries.get(n) !== full)) {
      if (performance.now() - t0 > 600_000) throw new Error('the operator did not converge in 10 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
    const convergeMs = performance.now() - t0;
    const pid = op.proc.pid as number;

    const connected = xdsClients
      ? await connectFleet({
          pid,
          address: controlAddr,
          clients: xdsClients,
          poolsPerClient: o.xdsPoolsPerClient ?? 25,
          pools: names,
          endpoints: o.endpoints,
        })
      : undefined;
    fleet = connected?.fleet;

    const writes0 = await metric(metricsPort, 'sibyl_status_writes_total');
    const random = seededRandom(1);
    const lastSet = new Map<string, string>();
    const delays: number[] = [];
    let changes = 0;
    let xdsChanges = 0;
    const usage = watchUsage(pid);
    const ownCpu = process.cpuUsage();
    const depths: number[] = [];
    const sampler = setInterval(
      () =>
        void metric(metricsPort, 'sibyl_workqueue_depth').then(
          (d) => depths.push(d),
          (e: unknown) => console.error(`work queue depth not read: ${errorMessage(e)}`),
        ),
      1000,
    );
    const start = performance.now();
    const gap = 1000 / o.changesPerSecond;
    const pending: Promise<void>[] = [];
    while (performance.now() - start < o.durationMs) {
      const hot = o.hotPools ? Math.min(o.hotPools, names.length) : 0;
      const n = names[Math.floor(random() * (hot || names.length))] as string;
      if (hot) waiters.get(n)?.drop();
      if (hot || !(waiters.has(n) || fleet?.awaiting(n))) {
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
        if (fleet) {
          xdsChanges++;
          pending.push(fleet.expect(n, ready, performance.now()));
        }
        await disc.replaceNamespacedEndpointSlice({
          name: n,
          namespace: NAMESPACE,
          body: slice(n, o.endpoints, ready),
        });
      }
      await new Promise((r) => setTimeout(r, gap));
    }
    const elapsedMin = (performance.now() - start) / 60_000;
    if (op.proc.exitCode !== null || op.proc.signalCode !== null)
      throw new Error('the operator stopped during the changes, so the figures are void');
    const used = usage.stop();
    clearInterval(sampler);
    const own = process.cpuUsage(ownCpu);
    const benchCpuShare = (own.user + own.system) / 1000 / (elapsedMin * 60_000);
    await Promise.all(pending);
    if (fleet?.failures().length) throw new Error(`xDS clients failed: ${fleet.failures().join('; ')}`);
    const writes = (await metric(metricsPort, 'sibyl_status_writes_total')) - writes0;
    delays.sort((a, b) => a - b);
    const xdsDelays = [...(fleet?.delays ?? [])].sort((a, b) => a - b);
    return {
      pools: o.pools,
      endpoints: o.endpoints,
      statusIntervalMs: parseDuration(o.statusInterval),
      convergeMs,
      changes,
      observed: delays.length,
      delayMs: stats(delays),
      statusWritesPerMinute: writes / elapsedMin,
      changesPerMinute: changes / elapsedMin,
      operatorRssMiB: used.rssMiB,
      operatorCpuShare: used.cpuShare,
      operatorMaxRssMiB: used.maxRssMiB,
      benchCpuShare,
      queueDepth: {
        mean: depths.reduce((a, b) => a + b, 0) / Math.max(1, depths.length),
        max: Math.max(0, ...depths),
      },
      ...(connected
        ? {
            xds: {
              ...connected.result,
              changes: xdsChanges,
              observed: xdsDelays.length,
              delayMs: stats(xdsDelays),
            },
          }
        : {}),
    };
  } finally {
    fleet?.close();
    await status?.stop();
    if (op) await stop(op); // SIGTERM, so that a profile is written before the API server goes
    cluster(dir, 'down');
  }
}
