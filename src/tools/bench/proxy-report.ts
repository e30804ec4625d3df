import { CALIBRATION } from './ads.js';
import {
  f2,
  type Added,
  type GhzTargets,
  type ProxyBenchResult,
  type XdsCalibration,
} from './proxy-result.js';
import type { RunResult } from './run-result.js';

/** `sibyl bench proxy`'s text report and bench/results/proxy.md. */

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const RUN_HEAD = ['target', 'calls/s', 'p50 ms', 'p99 ms', 'errors', 'cut'];

function runRow(label: string[], r: RunResult | undefined): string[] {
  if (!r) return [...label, 'skipped', '', '', '', ''];
  return [...label, f0(r.callsPerSec), f2(r.p50Ms), f2(r.p99Ms), String(r.errors), String(r.cut)];
}

/** Rows for the targets measured (a target never started is left out, not shown as skipped). */
function rows(named: [string, RunResult | undefined, boolean?][]): string[][] {
  return named.filter(([, r, always]) => r || always).map(([label, r]) => runRow([label], r));
}

/** "Added over direct: router p50 +x ms, p99 +y ms; nginx …" for the hops measured. */
function addedLine(lead: string, parts: [string, Added | undefined][]): string {
  const text = parts
    .filter((p): p is [string, Added] => p[1] !== undefined)
    .map(([name, x]) => `${name} p50 +${f2(x.p50Ms)} ms, p99 +${f2(x.p99Ms)} ms`);
  return `${lead}: ${text.join('; ')}`;
}

function calibrationLine(c: XdsCalibration): string {
  const ms = c.endpoints.map((e) => f2(e.serviceMs)).join(', ');
  const weights = c.endpoints.map((e) => String(e.weight)).join(', ');
  return (
    `sibyl's ADS: service times calibrated ${ms} ms; weights pushed ${weights}; ` +
    `estimated capacity ${f0(c.capacityCallsPerSec)} calls/s` +
    (c.offeredCallsPerSec !== undefined ? `, told ${f0(c.offeredCallsPerSec)} calls/s offered` : '') +
    `; grpc-go's stock policy ${c.stockPolicy}`
  );
}

/** The ghz table of one backend directly and each proxy in front of the homogeneous pool. */
const ghzTable = (t: GhzTargets) =>
  table(
    RUN_HEAD,
    rows([
      ['direct', t.direct, true],
      ['router', t.router, true],
      ['nginx', t.nginx, true],
      ['relay', t.relay, true],
      ['envoy', t.envoy],
    ]),
  );

const ghzAdded = (a: { router: Added; nginx?: Added; relay?: Added; envoy?: Added }) =>
  addedLine('Added over direct', [
    ['router', a.router],
    ['nginx', a.nginx],
    ['bare node:http2 relay', a.relay],
    ['envoy', a.envoy],
  ]);

function fixedRateSection(r: ProxyBenchResult): string[] {
  const f = r.fixedRate;
  const a = r.addedLatency;
  const out = [
    `At a fixed ${f.rps} calls/s (direct: one backend; proxies: the homogeneous pool), ghz`,
    ghzTable(f),
    '',
    ghzAdded(a),
  ];
  if (f.goDirect || f.jsDirect) {
    out.push(
      '',
      `Proxyless at ${f.rps} calls/s, each its own open-loop client: direct (one backend) and xds:/// through sibyl's ADS (the pool)`,
      table(
        RUN_HEAD,
        rows([
          ['grpc-go direct', f.goDirect],
          ['grpc-go xds', f.goXds],
          ['grpc-js direct', f.jsDirect],
          ['grpc-js xds', f.jsXds],
        ]),
      ),
      addedLine('Added over the same client direct', [
        ['grpc-go', a.goXds],
        ['grpc-js (sibyl.PredictiveLb)', a.jsXds],
      ]),
    );
  }
  if (r.xds) out.push(calibrationLine(r.xds));
  return out;
}

function tailSection(t: NonNullable<ProxyBenchResult['tail']>): string[] {
  return [
    `Heterogeneous pool for the tail: backends of ${t.latenciesMs.join(', ')} ms, ${t.slots} slot(s) each; ` +
      `ghz at ${t.rps} calls/s (${(t.load * 100).toFixed(0)}% of the estimated capacity)`,
    table(
      RUN_HEAD,
      rows([
        ['router', t.router, true],
        ['nginx', t.nginx, true],
        ['envoy', t.envoy, true],
      ]),
    ),
    calibrationLine(t.xds),
    '',
  ];
}

export function formatProxyBench(r: ProxyBenchResult): string {
  const e = r.env;
  const h = r.maxRate.homogeneous;
  const het = r.maxRate.heterogeneous;
  const o = r.oneAtATime;
  return [
    `sibyl bench proxy: load average ${e.loadAverage.before.toFixed(1)} before, ${e.loadAverage.after.toFixed(1)} after` +
      (e.repeat > 1 ? `; median of ${e.repeat} interleaved runs` : ''),
    `${e.backends} backends (${e.latencyMs} ms), heterogeneous pool ${e.heteroLatenciesMs.join('/')} ms; ` +
      `ghz -c ${e.concurrency} --connections ${e.connections}, ${e.durationS}s a run; router policy ${e.policy}; ` +
      `nginx ${e.nginx ?? 'skipped'} (${e.nginxWorkers} worker); envoy ${e.envoy ?? 'skipped'} (--concurrency 1); ` +
      `proxyless ${e.proxyless?.length ? e.proxyless.join(', ') : 'skipped'}; ${e.cpus} CPUs, Node ${e.node}, ghz ${e.ghz}`,
    '',
    ...fixedRateSection(r),
    '',
    `One call at a time (-c 1, one connection) at ${o.rps} calls/s`,
    ghzTable(o),
    ghzAdded(o.added),
    '',
    'Highest sustained rate (no --rps)',
    table(
      ['pool', ...RUN_HEAD],
      [
        runRow(['homogeneous', 'direct'], h.direct),
        runRow(['homogeneous', 'router'], h.router),
        runRow(['homogeneous', 'nginx'], h.nginx),
        runRow(['homogeneous', 'relay'], h.relay),
        ...(h.envoy ? [runRow(['homogeneous', 'envoy'], h.envoy)] : []),
        runRow(['heterogeneous', 'router'], het.router),
        runRow(['heterogeneous', 'nginx'], het.nginx),
        runRow(['heterogeneous', 'relay'], het.relay),
      ],
    ),
    '',
    ...(r.tail ? tailSection(r.tail) : []),
    'Pick cost',
    table(
      ['policy', 'endpoints', 'ns/pick', 'ns/call'],
      r.pick.map((p) => [p.policy, String(p.endpoints), f0(p.nsPerPick), f0(p.nsPerCall)]),
    ),
    '',
    'Targets (reported, not asserted)',
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.value, t.met === undefined ? 'n/a' : t.met ? 'yes' : 'NO']),
    ),
  ].join('\n');
}

/** What the tail pool's figures say: shares of the slow backends cannot be seen, their tails can. */
function tailReading(r: ProxyBenchResult): string[] {
  const t = r.tail;
  if (!t) return [];
  const slowest = Math.max(...t.latenciesMs);
  const w = t.xds.endpoints;
  const total = w.reduce((a, e) => a + e.weight, 0);
  const slowShare = w.filter((e) => e.configuredMs === slowest).reduce((a, e) => a + e.weight, 0) / total;
  return [
    `- The tail pool: backends of ${t.latenciesMs.join(', ')} ms with ${t.slots} slot(s) each (a call beyond ` +
      `them waits in the backend's queue), offered ${(t.load * 100).toFixed(0)}% of the capacity sibyl ` +
      `estimates from the calibration (slots / service time, summed: ${f0(t.xds.capacityCallsPerSec)} ` +
      `calls/s), so ${t.rps} calls/s. nginx least_conn sees only connections in flight; Envoy's ` +
      'LEAST_REQUEST with unequal weights picks by weight / (requests in flight + 1). With weights ' +
      `proportional to capacity the ${slowest} ms backend still has ${(slowShare * 100).toFixed(1)}% of the ` +
      `weight: while it serves more than 1% of the calls, every p99 here is at least its ${slowest} ms, and ` +
      'what tells the proxies apart is the queueing they add on top of it.',
  ];
}

export function formatMarkdown(r: ProxyBenchResult, command: string): string {
  const missed = r.targets.filter((t) => t.met === false).map((t) => `${t.name} (${t.value})`);
  const la = r.env.loadAverage;
  return [
    '# sibyl bench proxy',
    '',
    `Measured with \`${command}\` on ${new Date().toISOString().slice(0, 10)}; raw figures in proxy.json.`,
    '',
    '```',
    formatProxyBench(r),
    '```',
    '',
    '## Reading the figures',
    '',
    `- Everything ran on 127.0.0.1 on one ${r.env.cpus}-CPU machine: the load clients, the backends, the ` +
      `proxies, and whatever else the machine was doing (load average ${la.before.toFixed(1)} before the ` +
      `runs, ${la.after.toFixed(1)} after). The rates are those of the whole set-up, and latencies at a ` +
      'fixed rate grow with the time each process waits for a CPU; a proxy that needs more CPU per call ' +
      'waits more.',
    '- Direct is one grpc-js backend. The router is one Node process doing, for every call, the work of a ' +
      'gRPC server and of a client (two HTTP/2 streams in node:http2); nginx does the same in C with ' +
      `${r.env.nginxWorkers} worker, Envoy in C++ with one worker (--concurrency 1).`,
    '- "One call at a time" has no queueing anywhere: what each hop costs by itself.',
    '- relay is a bare node:http2 relay (src/tools/bench/relay.ts: round robin, no limits, breakers, retries, ' +
      'deadlines, cache or metrics): the floor for any proxy built on node:http2, measured beside the ' +
      'router in the same run. The router minus the relay is what its features cost; the relay minus ' +
      "direct is what Node's HTTP/2 costs per hop here.",
    "- Envoy is bootstrapped by `sibyl xds-bootstrap --kind envoy` at sibyl's ADS (an XdsServer in the " +
      "bench's process), which gives it the pool as src/xds builds it for an operator: LEAST_REQUEST with " +
      'the endpoint weights of src/xds/weights.ts (slots over predicted service time). The predicted ' +
      `service time is measured: ${CALIBRATION.calls} calls made one at a time straight to each backend ` +
      `(after ${CALIBRATION.warmup} unmeasured), so none queues, and of their latencies the ` +
      `${CALIBRATION.quantile * 100}th percentile, as the time a call holds a slot: the median would add ` +
      "the waits for a CPU this shared machine puts on many calls. Concurrency is the backend's slots " +
      'where they are limited (its --concurrency, configuration an operator knows). The bench waits until ' +
      'Envoy shows every endpoint at the pushed weight.',
    '- Proxyless: ghz cannot dial xds:///, so each proxyless client drives its own open-loop load (a call ' +
      'every 1/rate s, whatever the calls before it are doing) and is measured direct too: grpc-go is ' +
      'sibyl-xds-client (test/xds/go-client, its "load" command), grpc-js is src/tools/bench/load-client.ts ' +
      'with @grpc/grpc-js-xds and registerPredictiveBalancer(), so it runs sibyl.PredictiveLb, the first ' +
      "entry of the cluster's policy list (with the pool's policy); grpc-go has no sibyl policy and takes " +
      'the stock policy after it. Their added latency is each client through the ADS less the same client ' +
      'direct; the ghz rows and the proxyless rows are different clients and do not compare with each other.',
    ...tailReading(r),
    `- Targets: ${missed.length ? `missed: ${missed.join(', ')}` : 'all met'}.`,
    '',
  ].join('\n');
}
