import type { RunResult } from './run-result.js';

/** What `sibyl bench proxy` measured (proxy.json), and the targets read from it. */

export type Added = { p50Ms: number; p99Ms: number };

/** How sibyl's ADS programmed a pool: each endpoint's calibrated service time and the weight pushed. */
export interface XdsCalibration {
  /** The pool's capacity as the weights estimate it (src/xds/weights.ts), calls/s. */
  capacityCallsPerSec: number;
  /** The calls/s the pool was told it receives (XdsPoolInput.offeredCallsPerSec). */
  offeredCallsPerSec?: number;
  /** The stock policy proxyless clients without sibyl's own get after it (src/xds/proxyless.ts). */
  stockPolicy: string;
  endpoints: {
    address: string;
    /** `sibyl backend --latency-ms`. */
    configuredMs: number;
    /** The low end of calls made one at a time straight to it (ads.ts calibrate): its predictedServiceMs. */
    serviceMs: number;
    /** Its slots (`sibyl backend --concurrency`), when limited: the concurrency given to the ADS. */
    concurrency?: number;
    /** The endpoint weight sibyl pushed (load_balancing_weight). */
    weight: number;
  }[];
}

/** The targets ghz measures in the homogeneous pool: one backend directly, and each proxy. */
export interface GhzTargets {
  direct?: RunResult;
  router: RunResult;
  nginx?: RunResult;
  /** The bare node:http2 relay (relay.ts). */
  relay?: RunResult;
  /** Envoy programmed by sibyl's ADS. */
  envoy?: RunResult;
}

export interface ProxyBenchResult {
  env: {
    node: string;
    cpus: number;
    ghz: string;
    nginx?: string;
    nginxWorkers: number;
    /** Envoy's version (--concurrency 1), when measured. */
    envoy?: string;
    /** The proxyless clients measured: grpc-go (sibyl-xds-client) and grpc-js (load-client.ts). */
    proxyless?: string[];
    policy: string;
    durationS: number;
    concurrency: number;
    connections: number;
    backends: number;
    latencyMs: number;
    heteroLatenciesMs: number[];
    repeat: number;
    /** The machine's 1-minute load average around the runs: other work on it shows here. */
    loadAverage: { before: number; after: number };
  };
  pick: { policy: string; endpoints: number; nsPerPick: number; nsPerCall: number }[];
  fixedRate: GhzTargets & {
    rps: number;
    /** The proxyless clients, each direct (one backend) and through sibyl's ADS (the pool). */
    goDirect?: RunResult;
    goXds?: RunResult;
    jsDirect?: RunResult;
    jsXds?: RunResult;
  };
  addedLatency: {
    router: Added;
    nginx?: Added;
    /** The bare node:http2 relay (relay.ts): what any proxy on node:http2 adds here. */
    relay?: Added;
    envoy?: Added;
    /** Over the same client direct. */
    goXds?: Added;
    jsXds?: Added;
  };
  /** One call at a time (ghz -c 1, one connection) at a low rate: each hop's own cost, no queueing. */
  oneAtATime: GhzTargets & {
    rps: number;
    added: { router: Added; nginx?: Added; relay?: Added; envoy?: Added };
  };
  maxRate: {
    homogeneous: GhzTargets;
    heterogeneous: { router: RunResult; nginx?: RunResult; relay?: RunResult };
  };
  /** How the ADS was programmed for the homogeneous pool (Envoy, proxyless clients). */
  xds?: XdsCalibration;
  /**
   * The tail on a heterogeneous pool of backends with limited slots, at a fixed share of its capacity:
   * Envoy programmed by sibyl against nginx least_conn, the router beside them.
   */
  tail?: {
    latenciesMs: number[];
    slots: number;
    /** The share of the estimated capacity offered. */
    load: number;
    rps: number;
    xds: XdsCalibration;
    router: RunResult;
    nginx?: RunResult;
    envoy?: RunResult;
  };
  targets: { name: string; target: string; value: string; met: boolean | undefined }[];
}

export const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

type Target = ProxyBenchResult['targets'][number];

/** "≤ wanted ms" on an added p50, or not measured. */
function addedTarget(name: string, wanted: number, added: Added | undefined): Target {
  if (!added) return { name, target: `≤ ${wanted} ms`, value: 'not measured', met: undefined };
  return { name, target: `≤ ${wanted} ms`, value: `${f2(added.p50Ms)} ms`, met: added.p50Ms <= wanted };
}

const errorShare = (r: RunResult) => (r.count > 0 ? r.errors / r.count : 0);

/** Envoy's p99 on the heterogeneous pool against nginx's, with Envoy's errors bounded. */
function tailTarget(tail: ProxyBenchResult['tail']): Target {
  const name = 'envoy p99, heterogeneous';
  const target = '≤ 0.5× nginx, errors ≤ 0.1%';
  if (!tail?.envoy || !tail.nginx || !(tail.nginx.p99Ms > 0))
    return { name, target, value: 'not measured', met: undefined };
  const ratio = tail.envoy.p99Ms / tail.nginx.p99Ms;
  const errors = errorShare(tail.envoy);
  return {
    name,
    target,
    value:
      `${ratio.toFixed(2)}× (${f2(tail.envoy.p99Ms)} / ${f2(tail.nginx.p99Ms)} ms), ` +
      `errors ${(errors * 100).toFixed(2)}%`,
    met: ratio <= 0.5 && errors <= 0.001,
  };
}

export function evaluateTargets(r: Omit<ProxyBenchResult, 'targets'>): ProxyBenchResult['targets'] {
  const slowest = r.pick.reduce((a, b) => (b.nsPerPick > a.nsPerPick ? b : a));
  const pick = slowest.nsPerPick;
  const added = r.addedLatency.router.p50Ms;
  const ratio = (proxy: RunResult | undefined, nginx: RunResult | undefined) =>
    proxy && nginx && nginx.callsPerSec > 0 ? proxy.callsPerSec / nginx.callsPerSec : undefined;
  const homo = ratio(r.maxRate.homogeneous.router, r.maxRate.homogeneous.nginx);
  const het = ratio(r.maxRate.heterogeneous.router, r.maxRate.heterogeneous.nginx);
  const envoyRate = ratio(r.maxRate.homogeneous.envoy, r.maxRate.homogeneous.nginx);
  const pct = (x: number | undefined) => (x === undefined ? 'no nginx' : `${(x * 100).toFixed(0)}% of nginx`);
  return [
    {
      name: 'pick (slowest)',
      target: '≤ 5 µs',
      value: `${(pick / 1000).toFixed(2)} µs (${slowest.policy}, ${slowest.endpoints})`,
      met: pick <= 5000,
    },
    { name: 'added p50', target: '≤ 0.3 ms', value: `${f2(added)} ms`, met: added <= 0.3 },
    {
      name: 'throughput, homogeneous',
      target: '≥ 50% of nginx',
      value: pct(homo),
      met: homo === undefined ? undefined : homo >= 0.5,
    },
    {
      name: 'throughput, heterogeneous',
      target: '≥ 50% of nginx',
      value: pct(het),
      met: het === undefined ? undefined : het >= 0.5,
    },
    addedTarget('envoy added p50', 0.5, r.addedLatency.envoy),
    {
      name: 'envoy highest rate',
      target: '≥ 1.0× nginx',
      value: envoyRate === undefined ? 'not measured' : `${envoyRate.toFixed(2)}× nginx`,
      met: envoyRate === undefined ? undefined : envoyRate >= 1,
    },
    tailTarget(r.tail),
    addedTarget('grpc-go proxyless added p50', 0.1, r.addedLatency.goXds),
    addedTarget('grpc-js proxyless added p50', 0.1, r.addedLatency.jsXds),
  ];
}
