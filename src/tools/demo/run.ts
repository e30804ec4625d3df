import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../../util/clock.js';
import { formatMs } from '../../util/duration.js';
import { startRedisServer, type RedisServer } from '../../util/redis-server.js';
import { Zipf } from '../../util/zipf.js';
import { makeServingCert } from './certs.js';
import { LocalCluster } from './cluster.js';
import { cacheTierJson, poolJson, serviceYaml, sliceJson, type DemoBackend } from './objects.js';
import { Processes } from './processes.js';
import { Traffic, type PhaseResult } from './traffic.js';

export interface DemoOptions {
  stateDir: string;
  keep: boolean;
  rps: number;
  phaseSeconds: number;
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
 * `sibyl demo`: a local control plane, six backends, the operator and two routers connected to it,
 * traffic, the same traffic under each policy, and what `kubectl` shows at the moment that matters.
 */
export async function runDemo(o: DemoOptions): Promise<void> {
  rmSync(o.stateDir, { recursive: true, force: true });
  const logs = join(o.stateDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const cluster = new LocalCluster(join(o.stateDir, 'cluster'));
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
    writeFileSync(join(o.stateDir, 'router-token'), token);
    const tls = makeServingCert(join(o.stateDir, 'tls'));

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
    cluster.kubectl(['apply', '-f', '-'], poolJson(NS, 'shop', 'shop', o.policies[0] ?? 'RoundRobin'));

    o.say('▶ starting the operator and two routers subscribed to it');
    const controlPort = 20000 + Math.floor(Math.random() * 20000);
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
      `127.0.0.1:${controlPort}`,
      '--control-cert',
      join(tls.dir, 'tls.crt'),
      '--control-key',
      join(tls.dir, 'tls.key'),
      '--allowed-routers',
      `${NS}/sibyl-router`,
      '--push-interval',
      '1s',
      '--report-interval',
      '1s',
    ]);
    const routers: string[] = [];
    for (const r of ['router-1', 'router-2']) {
      const a = await procs.start(
        r,
        [
          'router',
          '--control',
          `localhost:${controlPort}`,
          '--control-ca',
          join(tls.dir, 'ca.crt'),
          '--token-file',
          join(o.stateDir, 'router-token'),
          '--namespace',
          NS,
          '--router-id',
          r,
          '--listen',
          '127.0.0.1:0',
          '--metrics-addr',
          '127.0.0.1:0',
        ],
        { waitForJson: true },
      );
      routers.push(String(a.listening));
    }
    await waitFor(
      () => JSON.parse(cluster.kubectl(['get', 'bp', 'shop', '-n', NS, '-o', 'json'])).status?.routers === 2,
      30_000,
      'both routers to subscribe',
    );

    const traffic = new Traffic(routers, o.rps, 1000, seededRandom(7), new Zipf(2000, 1));
    traffic.onTick = progress(o.say);
    traffic.start();
    o.say(
      `▶ traffic: ${o.rps} calls/s of Echo (2,000 keys, Zipf popularity) through both routers; warming up`,
    );
    await sleep(5000);
    o.say('▶ trouble: b5 slows down to ~120 ms per call; b6 starts failing 60% of its calls');
    await control(backends[4] as DemoBackend, { latencyMs: 120 });
    await control(backends[5] as DemoBackend, { errorRate: 0.6 });
    await sleep(3000);

    const results: PhaseResult[] = [];
    for (const policy of o.policies) {
      cluster.kubectl([
        'patch',
        'bp',
        'shop',
        '-n',
        NS,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { balancing: { policy } } }),
      ]);
      o.say(`▶ kubectl patch bp shop: policy ${policy}`);
      await sleep(2000);
      traffic.discard();
      await sleep(o.phaseSeconds * 1000);
      const r = traffic.phase(policy);
      results.push(r);
      clearLine();
      o.say(
        `  ${policy}: p50 ${formatMs(r.p50Ms)}, p99 ${formatMs(r.p99Ms)}, errors ${r.errors} of ${r.calls}`,
      );
    }
    if (o.cache) {
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
      await sleep(2000);
      traffic.discard();
      await sleep(o.phaseSeconds * 1000);
      const name = `${o.policies[o.policies.length - 1] ?? ''}+cache`;
      const r = traffic.phase(name);
      results.push(r);
      clearLine();
      o.say(
        `  ${name}: p50 ${formatMs(r.p50Ms)}, p99 ${formatMs(r.p99Ms)}, errors ${r.errors} of ${r.calls}`,
      );
      // Routers report every second and the operator writes status every two: let it catch up.
      await sleep(3000);
    }
    traffic.onTick = undefined;
    clearLine();
    o.say('');
    o.say(
      table(
        results,
        BACKENDS.map((b) => b.name),
      ),
    );
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

const tty = process.stdout.isTTY;
function clearLine(): void {
  if (tty) process.stdout.write('\r\x1b[2K');
}

function progress(say: (l: string) => void) {
  let last = 0;
  return (s: { sent: number; inflight: number; recent: Array<{ ms: number; ok: boolean }> }) => {
    const now = Date.now();
    if (now - last < (tty ? 250 : 5000)) return;
    last = now;
    const ok = s.recent
      .filter((x) => x.ok)
      .map((x) => x.ms)
      .sort((a, b) => a - b);
    const p50 = ok[Math.floor(ok.length / 2)] ?? NaN;
    const errs = s.recent.filter((x) => !x.ok).length;
    const line = `  … ${s.sent} calls sent, ${s.inflight} in flight, recent p50 ${formatMs(p50)}, recent errors ${errs}/${s.recent.length}`;
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else say(line);
  };
}

/** Every backend gets a column, also one that served nothing (a failing one behind an open breaker). */
function table(rows: PhaseResult[], backends: string[]): string {
  const head = ['policy', 'calls', 'p50', 'p99', 'errors', ...backends.map((b) => `%${b}`)];
  const body = rows.map((r) => [
    r.name,
    String(r.calls),
    formatMs(r.p50Ms),
    formatMs(r.p99Ms),
    `${((100 * r.errors) / Math.max(1, r.calls)).toFixed(2)}%`,
    ...backends.map((b) => `${((100 * (r.byBackend[b] ?? 0)) / Math.max(1, r.ok)).toFixed(0)}`),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...body.map(fmt)].join('\n');
}
