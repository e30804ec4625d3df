import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../../util/clock.js';
import { startRedisServer, type RedisServer } from '../../util/redis-server.js';
import { Zipf } from '../../util/zipf.js';
import { LocalCluster } from './cluster.js';
import { proxylessPath, startEnvoy, startRouters } from './dataplanes.js';
import { cacheTierJson, poolJson, serviceYaml, sliceJson, type DemoBackend } from './objects.js';
import { Processes, stopLeftovers } from './processes.js';
import { clearLine, phaseLine, progress, table } from './report.js';
import { Traffic, type PhaseResult } from './traffic.js';
import { tryDeadlineCounts, tryDeadlineLine } from './try-deadlines.js';

export interface DemoOptions {
  stateDir: string;
  keep: boolean;
  rps: number;
  phaseSeconds: number;
  /** The policies the proxyless grpc-js channel runs, one phase each (the pool's policy, patched). */
  policies: string[];
  /** Ends with a phase behind a CacheTier (L1 + L2 in a Redis the demo starts). */
  cache: boolean;
  say: (line: string) => void;
}

const NS = 'demo';

/** Six backends with different speeds; b5 slows down midway and b6 starts failing. */
const BACKENDS: Array<{ name: string; latencyMs: number }> = [
  { name: 'b1', latencyMs: 4 },
  { name: 'b2', latencyMs: 4 },
  { name: 'b3', latencyMs: 6 },
  { name: 'b4', latencyMs: 10 },
  { name: 'b5', latencyMs: 4 },
  { name: 'b6', latencyMs: 4 },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `sibyl demo`: a local control plane, six backends, the operator, and the data planes it programs: an
 * Envoy over xDS (the data path of most of the demo), a proxyless grpc-js channel in this process
 * running sibyl's policy, and two routers for the CacheTier. The same open-loop traffic goes through
 * each in turn while a backend slows and another fails, then what `kubectl` shows of it all.
 * `stateDir/results.json` keeps each phase's figures (the demo's test reads them).
 */
export async function runDemo(o: DemoOptions): Promise<void> {
  const logs = join(o.stateDir, 'logs');
  const cluster = new LocalCluster(join(o.stateDir, 'cluster'));
  // A previous run with KEEP=1 may still be up in this folder: stop it before clearing the folder.
  const left = stopLeftovers(logs);
  if (existsSync(cluster.dir)) cluster.down();
  if (left > 0) o.say(`▶ stopped ${left} processes a previous demo (KEEP=1) left running`);
  rmSync(o.stateDir, { recursive: true, force: true });
  mkdirSync(logs, { recursive: true });
  const procs = new Processes(logs);
  let cleaned = false;
  let redis: RedisServer | undefined;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await procs.stop();
    await redis?.stop();
    cluster.down();
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    o.say('▶ starting a local control plane (etcd + kube-apiserver)');
    cluster.up();
    cluster.kubectl(['apply', '-f', new URL('../../../crds', import.meta.url).pathname]);
    cluster.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    await cluster.kubectlRetry(['get', 'bp', '-A']);
    cluster.kubectl(['create', 'namespace', NS]);
    cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'sibyl-router', namespace: NS },
      }),
    );
    const token = cluster.kubectl(['create', 'token', 'sibyl-router', '-n', NS, '--duration', '24h']).trim();
    const tokenFile = join(o.stateDir, 'router-token');
    writeFileSync(tokenFile, token);

    o.say('▶ starting six sibyl backends (b5 will slow down, b6 will start failing)');
    const backends: DemoBackend[] = [];
    for (const b of BACKENDS) {
      const a = await procs.start(
        b.name,
        [
          'backend',
          '--listen',
          '127.0.0.1:0',
          '--metrics-addr',
          '127.0.0.1:0',
          '--name',
          b.name,
          '--latency-ms',
          String(b.latencyMs),
          '--jitter',
          '0.3',
          '--concurrency',
          '8',
          '--orca',
        ],
        { waitForJson: true },
      );
      backends.push({
        name: b.name,
        port: Number(String(a.listening).split(':').pop()),
        metrics: String(a.metrics),
      });
    }
    cluster.kubectl(['apply', '-f', '-'], serviceYaml(NS, 'shop'));
    for (const b of backends) cluster.kubectl(['apply', '-f', '-'], sliceJson(NS, 'shop', b));
    cluster.kubectl(['apply', '-f', '-'], poolJson(NS, 'shop', 'shop', o.policies[0] ?? 'Predictive'));

    o.say('▶ starting the operator, an Envoy it programs over xDS, and two routers (for the cache)');
    const controlPort = 20000 + Math.floor(Math.random() * 20000);
    const server = `127.0.0.1:${controlPort}`;
    await procs.start('operator', [
      'operator',
      '--kubeconfig',
      cluster.env.KUBECONFIG as string,
      '--namespace',
      NS,
      '--lease-namespace',
      NS,
      '--metrics-addr',
      '127.0.0.1:0',
      '--status-interval',
      '2s',
      '--control-addr',
      server,
      // Plaintext on loopback: @grpc/grpc-js-xds 1.14 speaks neither TLS nor tokens to its xDS
      // server. Routers still present their ServiceAccount token; a cluster install uses TLS.
      '--control-insecure',
      '--xds-allow-unauthenticated',
      '--allowed-routers',
      `${NS}/sibyl-router`,
      '--push-interval',
      '1s',
      '--report-interval',
      '1s',
    ]);
    const envoy = await startEnvoy({ server, namespace: NS, baseId: controlPort, logs, procs });
    const routers = await startRouters({ procs, controlPort, tokenFile, namespace: NS });
    await waitFor(
      () => {
        const st = poolStatus(cluster);
        return st.routers === 2 && (st.dataPlanes?.byKind?.envoy ?? 0) >= 1;
      },
      30_000,
      'the Envoy and both routers to subscribe',
    );

    const traffic = new Traffic({ targets: [envoy.listen] }, o.rps, 1000, seededRandom(7), new Zipf(2000, 1));
    traffic.onTick = progress(o.say);
    traffic.start();
    o.say(
      `▶ traffic: ${o.rps} calls/s of Echo (2,000 keys, Zipf popularity) through Envoy (${envoy.listen}); warming up`,
    );
    await sleep(5000);
    o.say('▶ trouble: b5 slows down to ~120 ms per call; b6 starts failing 60% of its calls');
    await control(backends[4] as DemoBackend, { latencyMs: 120 });
    await control(backends[5] as DemoBackend, { errorRate: 0.6 });
    await sleep(3000);

    const results: PhaseResult[] = [];
    const measure = async (name: string) => {
      await sleep(2000);
      traffic.discard();
      await sleep(o.phaseSeconds * 1000);
      const r = traffic.phase(name);
      results.push(r);
      clearLine();
      o.say(phaseLine(r));
    };
    o.say("▶ Envoy: LEAST_REQUEST with sibyl's endpoint weights, learned from Envoy's access logs");
    await measure('envoy');

    const pool = `shop.${NS}`;
    o.say(`▶ proxyless: a grpc-js channel to xds:///${pool} running sibyl's policy in process`);
    traffic.to(proxylessPath(server, pool));
    await traffic.ready(30_000);
    for (const policy of o.policies) {
      patchPolicy(cluster, policy);
      o.say(`▶ kubectl patch bp shop: policy ${policy} (the grpc-js channel runs it)`);
      await measure(`grpc-js ${policy}`);
    }
    if (o.cache) {
      // CacheTiers are served by sibyl routers: the same traffic goes through them, first without the
      // tier (the routers learn the pool, and the row to compare the cache with), then with it.
      const last = o.policies[o.policies.length - 1] ?? '';
      o.say('▶ routers: the same traffic through two sibyl routers, the data path of CacheTiers');
      traffic.to({ targets: routers.map((r) => r.listen) });
      await measure(`routers ${last}`);
      o.say(
        '▶ kubectl apply CacheTier shop-cache: Echo cached 10 s, L1 in each router, L2 in a Redis, warming on',
      );
      redis = await startRedisServer({ detached: true });
      appendFileSync(join(logs, 'pids'), `${redis.pid}\n`);
      cluster.kubectl(['apply', '-f', '-'], cacheTierJson(NS, 'shop-cache', 'shop', redis.url));
      await waitFor(
        () => tierReady(JSON.parse(cluster.kubectl(['get', 'ct', 'shop-cache', '-n', NS, '-o', 'json']))),
        30_000,
        'CacheTier shop-cache to be Ready with its Redis reachable',
      );
      await measure(`routers ${last}+cache`);
    }
    // Data planes report every second and the operator writes status every two: let it catch up.
    await sleep(3000);
    traffic.onTick = undefined;
    clearLine();
    // Envoy's own count of the calls it sent the pool's backends: the Envoy phase went through it.
    const envoyUpstream = /sibyl_demo_shop\.upstream_rq_total: (\d+)/.exec(
      await envoy.adminGet('/stats?filter=upstream_rq_total'),
    )?.[1];
    const tryDeadlines = await tryDeadlineCounts(envoy, routers);
    writeFileSync(
      join(o.stateDir, 'results.json'),
      JSON.stringify(
        { phases: results, envoyUpstreamRequests: Number(envoyUpstream ?? 0), tryDeadlines },
        null,
        2,
      ),
    );
    o.say('');
    o.say(
      table(
        results,
        BACKENDS.map((b) => b.name),
      ),
    );
    o.say(tryDeadlineLine(tryDeadlines));
    o.say('');
    o.say('$ kubectl get bp -n demo');
    o.say(cluster.kubectl(['get', 'bp', '-n', NS, '-o', 'wide']));
    o.say('$ kubectl describe bp shop -n demo');
    o.say(cluster.kubectl(['describe', 'bp', 'shop', '-n', NS]));
    if (o.cache) {
      o.say('$ kubectl get ct -n demo');
      o.say(cluster.kubectl(['get', 'ct', '-n', NS, '-o', 'wide']));
      o.say('$ kubectl describe ct shop-cache -n demo');
      o.say(cluster.kubectl(['describe', 'ct', 'shop-cache', '-n', NS]));
    }
    traffic.stop();
    if (o.keep) {
      procs.detach();
      redis?.detach();
      cleaned = true;
      o.say(
        `Left running. Point kubectl at it with:\n${cluster.exports}\nLogs: ${logs}\nStop it with: make demo-down`,
      );
    } else {
      await cleanup();
      o.say(`Stopped everything. Logs: ${logs}`);
    }
  } catch (e) {
    await cleanup();
    o.say(`The demo failed; logs are in ${logs}`);
    throw e;
  }
}

interface PoolStatus {
  routers?: number;
  dataPlanes?: { byKind?: Record<string, number> };
}

function poolStatus(cluster: LocalCluster): PoolStatus {
  return (JSON.parse(cluster.kubectl(['get', 'bp', 'shop', '-n', NS, '-o', 'json'])).status ??
    {}) as PoolStatus;
}

function patchPolicy(cluster: LocalCluster, policy: string): void {
  const patch = JSON.stringify({ spec: { balancing: { policy } } });
  cluster.kubectl(['patch', 'bp', 'shop', '-n', NS, '--type', 'merge', '-p', patch]);
}

async function control(b: DemoBackend, patch: object): Promise<void> {
  const r = await fetch(`http://${b.metrics}/control`, {
    method: 'POST',
    body: JSON.stringify(patch),
    headers: { 'content-type': 'application/json' },
  });
  if (!r.ok)
    throw new Error(`backend ${b.name} refused ${JSON.stringify(patch)}: ${r.status} ${await r.text()}`);
}

function tierReady(ct: { status?: { conditions?: Array<{ type: string; status: string }> } }): boolean {
  const c = ct.status?.conditions ?? [];
  const is = (type: string) => c.some((x) => x.type === type && x.status === 'True');
  return is('Ready') && is('RedisReachable');
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}
