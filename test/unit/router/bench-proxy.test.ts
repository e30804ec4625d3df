import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  evaluateTargets,
  formatProxyBench,
  renderNginxConf,
  summarizeGhz,
  type GhzReport,
  type ProxyBenchResult,
  type RunResult,
} from '../../../src/tools/bench/proxy.js';
import { benches } from '../../../src/cli/bench.js';
import { commands } from '../../../src/cli/commands.js';

// The pure parts of `sibyl bench proxy`: reading ghz's report, filling the nginx template, the targets.

const report = (over: Partial<GhzReport> = {}): GhzReport => ({
  count: 9900,
  total: 10e9,
  average: 1.5e6,
  rps: 990,
  latencyDistribution: [
    { percentage: 50, latency: 1.2e6 },
    { percentage: 90, latency: 2.5e6 },
    { percentage: 99, latency: 7.25e6 },
  ],
  statusCodeDistribution: { OK: 9880, Unavailable: 20 },
  errorDistribution: {
    'rpc error: code = Unavailable desc = error reading from server: read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection': 15,
    'rpc error: code = Unavailable desc = no endpoint available': 5,
  },
  options: { skipFirst: 100 },
  ...over,
});

describe('summarizeGhz', () => {
  it('reads latencies in ms, counts skipped calls in the rate, and tells cut calls from errors', () => {
    const r = summarizeGhz('router', report(), 1000);
    expect(r).toMatchObject({
      target: 'router',
      rps: 1000,
      count: 9900,
      p50Ms: 1.2,
      p90Ms: 2.5,
      p99Ms: 7.25,
    });
    expect(r.callsPerSec).toBeCloseTo(1000); // (9900 + 100 skipped) / 10 s
    expect(r.meanMs).toBe(1.5);
    expect(r.cut).toBe(15);
    expect(r.errors).toBe(5);
  });

  it('a run with no calls measured has no percentiles rather than zeros', () => {
    const r = summarizeGhz(
      'x',
      report({ count: 0, latencyDistribution: null, statusCodeDistribution: null, errorDistribution: null }),
    );
    expect(r.p50Ms).toBeNaN();
    expect(r.errors).toBe(0);
  });
});

describe('the nginx config', () => {
  const template = readFileSync(path.join('hack', 'nginx', 'grpc-least-conn.conf.template'), 'utf8');

  it('fills the template: least_conn over the backends, HTTP/2 on the listen line, all paths under the prefix', () => {
    const conf = renderNginxConf(template, {
      prefix: '/tmp/x',
      port: 8443,
      workers: 1,
      backends: ['127.0.0.1:5001', '127.0.0.1:5002'],
    });
    expect(conf).toContain('listen 127.0.0.1:8443 http2;');
    expect(conf).toMatch(
      /upstream sibyl_backends \{\s+least_conn;\s+server 127\.0\.0\.1:5001 max_fails=0;\s+server 127\.0\.0\.1:5002 max_fails=0;/,
    );
    expect(conf).toContain('grpc_pass grpc://sibyl_backends;');
    expect(conf).toContain('worker_processes 1;');
    expect(conf.split('\n').filter((l) => !l.trimStart().startsWith('#') && l.includes('${'))).toEqual([]);
    for (const line of conf.split('\n').filter((l) => /_path|pid |error_log/.test(l))) {
      expect(line).toContain('/tmp/x');
    }
  });

  it('refuses a field it does not know', () => {
    expect(() => renderNginxConf('${nope}', { prefix: '/', port: 1, workers: 1, backends: [] })).toThrow(
      /unknown field \$\{nope\}/,
    );
  });

  const nginx = '/usr/sbin/nginx';
  (existsSync(nginx) ? it : it.skip)('is a config nginx accepts (nginx -t)', () => {
    const prefix = mkdtempSync(path.join(tmpdir(), 'sibyl-nginx-t-'));
    try {
      const conf = path.join(prefix, 'nginx.conf');
      writeFileSync(
        conf,
        renderNginxConf(template, { prefix, port: 1, workers: 1, backends: ['127.0.0.1:2'] }),
      );
      const out = execFileSync(nginx, ['-t', '-p', prefix, '-c', conf, '-g', 'daemon off;'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(out).toBe('');
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});

describe('targets and the report', () => {
  const run = (target: string, callsPerSec: number, p50Ms: number, p99Ms: number): RunResult => ({
    target,
    callsPerSec,
    count: 1000,
    p50Ms,
    p90Ms: p50Ms * 2,
    p99Ms,
    meanMs: p50Ms,
    errors: 0,
    cut: 0,
    statuses: { OK: 1000 },
  });
  const partial: Omit<ProxyBenchResult, 'targets'> = {
    env: {
      node: '20',
      cpus: 2,
      ghz: '0.120.0',
      nginx: '1.22.1',
      nginxWorkers: 1,
      policy: 'LeastRequest',
      durationS: 10,
      concurrency: 50,
      connections: 4,
      backends: 4,
      latencyMs: 0,
      heteroLatenciesMs: [0, 1, 2, 5],
      repeat: 1,
      loadAverage: { before: 0.5, after: 1.5 },
    },
    pick: [{ policy: 'LeastRequest', endpoints: 4, nsPerPick: 300, nsPerCall: 400 }],
    fixedRate: {
      rps: 1000,
      direct: run('direct', 1000, 0.5, 2),
      router: run('router', 1000, 0.7, 3),
      nginx: run('nginx', 1000, 0.6, 2.5),
    },
    addedLatency: { router: { p50Ms: 0.2, p99Ms: 1 }, nginx: { p50Ms: 0.1, p99Ms: 0.5 } },
    oneAtATime: {
      rps: 200,
      direct: run('direct', 200, 0.4, 1),
      router: run('router', 200, 0.6, 1.5),
      nginx: run('nginx', 200, 0.5, 1.2),
      added: { router: { p50Ms: 0.2, p99Ms: 0.5 }, nginx: { p50Ms: 0.1, p99Ms: 0.2 } },
    },
    maxRate: {
      homogeneous: {
        direct: run('direct', 6000, 5, 20),
        router: run('router', 3000, 10, 40),
        nginx: run('nginx', 5000, 8, 30),
      },
      heterogeneous: { router: run('router', 2000, 12, 50), nginx: run('nginx', 4500, 9, 35) },
    },
  };

  it('checks the issue’s targets: pick ≤ 5 µs, added p50 ≤ 0.3 ms, throughput ≥ half of nginx', () => {
    expect(evaluateTargets(partial)).toEqual([
      { name: 'pick (slowest)', target: '≤ 5 µs', value: '0.30 µs (LeastRequest, 4)', met: true },
      { name: 'added p50', target: '≤ 0.3 ms', value: '0.20 ms', met: true },
      { name: 'throughput, homogeneous', target: '≥ 50% of nginx', value: '60% of nginx', met: true },
      { name: 'throughput, heterogeneous', target: '≥ 50% of nginx', value: '44% of nginx', met: false },
    ]);
  });

  it('without nginx the throughput targets are not applicable', () => {
    const noNginx = {
      ...partial,
      maxRate: {
        homogeneous: { ...partial.maxRate.homogeneous, nginx: undefined },
        heterogeneous: { router: partial.maxRate.heterogeneous.router },
      },
    };
    expect(
      evaluateTargets(noNginx)
        .slice(2)
        .map((t) => t.met),
    ).toEqual([undefined, undefined]);
  });

  it('prints every figure in its table', () => {
    const text = formatProxyBench({ ...partial, targets: evaluateTargets(partial) });
    expect(text).toMatch(/router\s+1000\s+0\.70\s+3\.00\s+0\s+0/);
    expect(text).toMatch(/heterogeneous\s+nginx\s+4500/);
    expect(text).toContain('router p50 +0.20 ms, p99 +1.00 ms');
    expect(text).toMatch(/One call at a time[^\n]*\n[\s\S]*router\s+200\s+0\.60\s+1\.50/);
    expect(text).toMatch(/throughput, heterogeneous\s+≥ 50% of nginx\s+44% of nginx\s+NO/);
  });
});

it('`sibyl bench proxy` is registered', () => {
  expect(Object.keys(benches)).toEqual(expect.arrayContaining(['sim', 'proxy']));
  expect(commands.bench?.load).toBeDefined();
});
