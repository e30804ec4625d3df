import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderNginxConf } from '../../../src/tools/bench/nginx.js';
import {
  evaluateTargets,
  type ProxyBenchResult,
  type XdsCalibration,
} from '../../../src/tools/bench/proxy-result.js';
import { formatProxyBench } from '../../../src/tools/bench/proxy-report.js';
import {
  medianRun,
  summarizeGhz,
  summarizeLoad,
  type GhzReport,
  type RunResult,
} from '../../../src/tools/bench/run-result.js';
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

describe('summarizeLoad: an open-loop client’s calls read like ghz’s report', () => {
  it('leaves the first 100 calls out of the latencies but not the rate, and counts failures apart', () => {
    // 300 calls: the first 100 slow (connections), then 1..200 ms, two of them failed.
    const latencyUs = [
      ...Array<number>(100).fill(50_000),
      ...Array.from({ length: 200 }, (_, i) => (i + 1) * 1000),
    ];
    const codes = latencyUs.map((_, i) => (i === 150 || i === 299 ? 14 : 0));
    const r = summarizeLoad('grpc-go xds', { sent: 300, seconds: 0.3, latencyUs, codes }, 1000);
    expect(r).toMatchObject({ target: 'grpc-go xds', rps: 1000, count: 200, errors: 2, cut: 0 });
    expect(r.callsPerSec).toBeCloseTo(1000);
    expect(r.statuses).toEqual({ OK: 198, UNAVAILABLE: 2 });
    // The 198 successes are 1..200 ms less 51 and 200: the median (the 99th) is 100 ms.
    expect(r.p50Ms).toBe(100);
    expect(r.p99Ms).toBe(198);
    expect(r.meanMs).toBeCloseTo((200 * 201) / 2 / 198 - (51 + 200) / 198);
  });

  it('a run of only skipped calls has no percentiles', () => {
    const r = summarizeLoad('x', {
      sent: 10,
      seconds: 1,
      latencyUs: Array(10).fill(1000),
      codes: Array(10).fill(0),
    });
    expect(r.count).toBe(0);
    expect(r.p50Ms).toBeNaN();
  });
});

describe('medianRun', () => {
  const r = (callsPerSec: number, p50Ms: number): RunResult => ({
    target: 't',
    callsPerSec,
    count: 1,
    p50Ms,
    p90Ms: p50Ms,
    p99Ms: p50Ms,
    meanMs: p50Ms,
    errors: 0,
    cut: 0,
    statuses: {},
  });
  it('takes the median by p50 at a fixed rate and by calls/s flat out, keeping every run', () => {
    const runs = [r(900, 3), r(1000, 1), r(800, 2)];
    expect(medianRun(runs, true)).toMatchObject({ p50Ms: 2, callsPerSec: 800 });
    expect(medianRun(runs, false)).toMatchObject({ p50Ms: 3, callsPerSec: 900 });
    expect(medianRun(runs, true).runs).toHaveLength(3);
    expect(medianRun([r(1, 1)], true).runs).toBeUndefined();
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
    expect(evaluateTargets(partial).slice(0, 4)).toEqual([
      { name: 'pick (slowest)', target: '≤ 5 µs', value: '0.30 µs (LeastRequest, 4)', met: true },
      { name: 'added p50', target: '≤ 0.3 ms', value: '0.20 ms', met: true },
      { name: 'throughput, homogeneous', target: '≥ 50% of nginx', value: '60% of nginx', met: true },
      { name: 'throughput, heterogeneous', target: '≥ 50% of nginx', value: '44% of nginx', met: false },
    ]);
  });

  it('a result without Envoy or proxyless clients (an older proxy.json) has those targets not measured', () => {
    expect(evaluateTargets(partial).slice(4)).toEqual([
      { name: 'envoy added p50', target: '≤ 0.5 ms', value: 'not measured', met: undefined },
      { name: 'envoy highest rate', target: '≥ 1.0× nginx', value: 'not measured', met: undefined },
      {
        name: 'envoy p99, heterogeneous',
        target: '≤ 0.5× nginx, errors ≤ 0.1%',
        value: 'not measured',
        met: undefined,
      },
      { name: 'grpc-go proxyless added p50', target: '≤ 0.1 ms', value: 'not measured', met: undefined },
      { name: 'grpc-js proxyless added p50', target: '≤ 0.1 ms', value: 'not measured', met: undefined },
    ]);
  });

  const calibration = (ms: number[], weights: number[]): XdsCalibration => ({
    capacityCallsPerSec: 1000,
    offeredCallsPerSec: 700,
    stockPolicy: 'least_request',
    endpoints: ms.map((m, i) => ({
      address: `127.0.0.1:${5000 + i}`,
      configuredMs: m,
      serviceMs: m + 0.4,
      concurrency: 1,
      weight: weights[i] as number,
    })),
  });
  const withXds: Omit<ProxyBenchResult, 'targets'> = {
    ...partial,
    env: { ...partial.env, envoy: '1.40.0', proxyless: ['grpc-go', 'grpc-js'] },
    fixedRate: {
      ...partial.fixedRate,
      envoy: run('envoy', 1000, 0.9, 4),
      goDirect: run('grpc-go direct', 1000, 0.4, 1.9),
      goXds: run('grpc-go xds', 1000, 0.45, 2),
      jsDirect: run('grpc-js direct', 1000, 0.6, 3),
      jsXds: run('grpc-js xds', 1000, 0.8, 3.5),
    },
    addedLatency: {
      ...partial.addedLatency,
      envoy: { p50Ms: 0.4, p99Ms: 2 },
      goXds: { p50Ms: 0.05, p99Ms: 0.1 },
      jsXds: { p50Ms: 0.2, p99Ms: 0.5 },
    },
    maxRate: {
      ...partial.maxRate,
      homogeneous: { ...partial.maxRate.homogeneous, envoy: run('envoy', 5500, 7, 25) },
    },
    tail: {
      latenciesMs: [2, 2, 25],
      slots: 1,
      load: 0.7,
      rps: 700,
      xds: calibration([2, 2, 25], [420, 420, 39]),
      router: run('router', 700, 3, 60),
      nginx: { ...run('nginx', 700, 2.5, 52), count: 7000 },
      envoy: {
        ...run('envoy', 700, 2.4, 26),
        count: 7000,
        errors: 7,
        statuses: { OK: 6993, Unavailable: 7 },
      },
    },
  };

  it('checks Envoy’s and the proxyless clients’ targets, each against its own reference', () => {
    expect(evaluateTargets(withXds).slice(4)).toEqual([
      { name: 'envoy added p50', target: '≤ 0.5 ms', value: '0.40 ms', met: true },
      { name: 'envoy highest rate', target: '≥ 1.0× nginx', value: '1.10× nginx', met: true },
      {
        name: 'envoy p99, heterogeneous',
        target: '≤ 0.5× nginx, errors ≤ 0.1%',
        value: '0.50× (26.00 / 52.00 ms), errors 0.10%',
        met: true,
      },
      { name: 'grpc-go proxyless added p50', target: '≤ 0.1 ms', value: '0.05 ms', met: true },
      { name: 'grpc-js proxyless added p50', target: '≤ 0.1 ms', value: '0.20 ms', met: false },
    ]);
  });

  it('Envoy’s tail target fails on errors above 0.1% even with a short p99', () => {
    const tail = withXds.tail!;
    const failing = { ...withXds, tail: { ...tail, envoy: { ...tail.envoy!, errors: 8 } } };
    expect(evaluateTargets(failing)[6]).toMatchObject({
      value: expect.stringContaining('errors 0.11%'),
      met: false,
    });
  });

  it('prints the Envoy, proxyless and tail rows and how the ADS was programmed', () => {
    const text = formatProxyBench({
      ...withXds,
      xds: calibration([0, 0, 0], [2500, 2400, 2500]),
      targets: evaluateTargets(withXds),
    });
    expect(text).toMatch(/At a fixed 1000[^\n]*\n[\s\S]*envoy\s+1000\s+0\.90\s+4\.00/);
    expect(text).toMatch(/grpc-go xds\s+1000\s+0\.45\s+2\.00/);
    expect(text).toContain('grpc-go p50 +0.05 ms, p99 +0.10 ms; grpc-js (sibyl.PredictiveLb) p50 +0.20 ms');
    expect(text).toContain('weights pushed 2500, 2400, 2500');
    expect(text).toMatch(/homogeneous\s+envoy\s+5500/);
    expect(text).toMatch(/backends of 2, 2, 25 ms, 1 slot\(s\) each; ghz at 700 calls\/s \(70%/);
    expect(text).toMatch(/Heterogeneous pool for the tail[\s\S]*envoy\s+700\s+2\.40\s+26\.00\s+7/);
    expect(text).toContain('weights pushed 420, 420, 39');
    expect(text).toMatch(/grpc-js proxyless added p50\s+≤ 0\.1 ms\s+0\.20 ms\s+NO/);
  });

  it('leaves out the rows of targets never started', () => {
    const text = formatProxyBench({ ...partial, targets: evaluateTargets(partial) });
    expect(text).not.toMatch(/envoy\s+\d/);
    expect(text).not.toContain('Proxyless');
    expect(text).not.toContain('tail');
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
