import { readFile } from 'node:fs/promises';
import type { BackendPoolSpec } from '../../api/backendpool.js';
import { limitNames } from '../../limit/index.js';
import { parseDuration } from '../../util/duration.js';
import { SibylError, errorMessage } from '../../util/errors.js';
import { Checker } from './checker.js';
import { parseHedging, parseTimeout, type HedgingSpec, type TimeoutSpec } from './try-policy.js';

/**
 * A simulator scenario (bench/scenarios/README.md, "Simulator scenario files"): the pool's servers, the calls sent
 * to it, what goes wrong and when, and what the routers get to see. Parsing checks every field and names
 * the one at fault (`servers[2].speed must be a number > 0, got "fast"`), and refuses unknown fields, so
 * a typo never silently falls back to a default.
 *
 * Extensions to the design's format, all optional (bench/scenarios/README.md):
 * - `load.ramp {to, fromS, toS}`: the load (in the unit of `utilization` or `rps`) moves linearly from
 *   its base value at fromS to `to` at toS, and stays there;
 * - `concurrency`: a BackendPool `spec.concurrency`; each router then admits calls through its own
 *   adaptive limiter (src/limit) and sheds the rest at once;
 * - events may carry `latencyMs` as well as `slowdown`: calls served in the window take that long
 *   (with the usual noise), whatever their method and payload;
 * - `servers[].methodSpeed {method: factor}` and `servers[].perKiBFactor`: a group's speed for one
 *   method, and its per-KiB cost, multiplied by the factor (a cold index slow for Search only, a slow
 *   disk making large payloads slow on some servers only);
 * - events may carry `antagonistCpu`: the server's antagonist takes that value during the window.
 */

export interface MethodSpec {
  name: string;
  share: number;
  costMs: number;
  payloadBytes: [number, number];
  costPerKiBMs: number;
}

export interface ServerGroup {
  count: number;
  speed: number;
  concurrency: number;
  antagonistCpu: number;
  /** Method name → factor on this group's speed for that method (default 1). */
  methodSpeed?: Record<string, number>;
  /** Factor on every method's `costPerKiBMs` on this group (default 1). */
  perKiBFactor?: number;
}

export interface EventSpec {
  server: number;
  fromS: number;
  toS: number;
  slowdown?: number;
  latencyMs?: number;
  errorRate?: number;
  errorLatencyMs: number;
  pauseEveryS?: number;
  pauseMs?: number;
  antagonistCpu?: number;
}

export interface LoadSpec {
  utilization?: number;
  rps?: number;
  ramp?: { to: number; fromS: number; toS: number };
}

export interface Scenario {
  name: string;
  seed: number;
  durationS: number;
  warmupS: number;
  routers: number;
  load: LoadSpec;
  deadlineMs: number;
  telemetry: { metricsIntervalS: number; reportIntervalS: number };
  methods: MethodSpec[];
  servers: ServerGroup[];
  events: EventSpec[];
  concurrency?: NonNullable<BackendPoolSpec['concurrency']>;
  /** Hedged calls (src/tools/sim/try-policy.ts). */
  hedging?: HedgingSpec;
  /** Per-try deadlines with retry (src/tools/sim/try-policy.ts). */
  timeout?: TimeoutSpec;
  /** A cancelled try (hedge loser, try past its deadline) frees its slot at once, running or not. */
  cancelRunning?: boolean;
}

/** One server after groups are expanded; index = position in the scenario. */
export interface ServerSpec {
  index: number;
  speed: number;
  concurrency: number;
  antagonistCpu: number;
  /**
   * Per method (by index), this server's cost at speed 1 where its group's `methodSpeed` or
   * `perKiBFactor` makes it differ from the method's own; absent when neither is given.
   */
  costs?: MethodCost[];
}

/** A method's work on one server at speed 1: costMs + perKiBMs per KiB of payload. */
export interface MethodCost {
  costMs: number;
  perKiBMs: number;
}

const TOP = [
  'name',
  'seed',
  'durationS',
  'warmupS',
  'routers',
  'load',
  'deadlineMs',
  'telemetry',
  'methods',
  'servers',
  'events',
  'concurrency',
  'hedging',
  'timeout',
  'cancelRunning',
] as const;

/** Checks a parsed JSON value and returns the scenario with defaults filled in. */
export function parseScenario(json: unknown, source = 'scenario'): Scenario {
  const c: Checker = new Checker(source);
  const o = c.object(json, '', TOP);
  if (typeof o.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(o.name)) {
    c.fail('name', 'must be a name of letters, digits, ".", "_" or "-"', o.name);
  }
  const durationS = c.number(o, 'durationS', '', { above: 0, max: 86_400 });
  const warmupS = c.number(o, 'warmupS', '', { min: 0, fallback: 0 });
  if (warmupS >= durationS) c.fail('warmupS', `must be less than durationS (${durationS})`, warmupS);
  const deadlineMs = c.number(o, 'deadlineMs', '', { above: 0, fallback: 1000 });

  const lo = c.object(o.load, 'load', ['utilization', 'rps', 'ramp']);
  const load: LoadSpec = {};
  if ((lo.utilization === undefined) === (lo.rps === undefined)) {
    c.fail('load', 'must give exactly one of utilization and rps');
  }
  if (lo.utilization !== undefined)
    load.utilization = c.number(lo, 'utilization', 'load', { above: 0, max: 100 });
  if (lo.rps !== undefined) load.rps = c.number(lo, 'rps', 'load', { above: 0, max: 1e7 });
  if (lo.ramp !== undefined) {
    const r = c.object(lo.ramp, 'load.ramp', ['to', 'fromS', 'toS']);
    const ramp = {
      to: c.number(r, 'to', 'load.ramp', { above: 0, max: lo.rps !== undefined ? 1e7 : 100 }),
      fromS: c.number(r, 'fromS', 'load.ramp', { min: 0, fallback: 0 }),
      toS: c.number(r, 'toS', 'load.ramp', { min: 0, max: durationS }),
    };
    if (ramp.toS <= ramp.fromS) c.fail('load.ramp.toS', `must be after fromS (${ramp.fromS})`, ramp.toS);
    load.ramp = ramp;
  }

  const te = c.object(o.telemetry ?? {}, 'telemetry', ['metricsIntervalS', 'reportIntervalS']);
  const telemetry = {
    metricsIntervalS: c.number(te, 'metricsIntervalS', 'telemetry', { above: 0, fallback: 1 }),
    reportIntervalS: c.number(te, 'reportIntervalS', 'telemetry', { above: 0, fallback: 1 }),
  };

  const methods = c.array(o.methods, 'methods', true).map((m, i): MethodSpec => {
    const p = `methods[${i}]`;
    const mo = c.object(m, p, ['name', 'share', 'costMs', 'payloadBytes', 'costPerKiBMs']);
    if (typeof mo.name !== 'string' || !/^\/[^/\s]+\/[^/\s]+$/.test(mo.name)) {
      c.fail(`${p}.name`, 'must be a full gRPC method name such as /pkg.Service/Method', mo.name);
    }
    let payloadBytes: [number, number] = [0, 0];
    if (mo.payloadBytes !== undefined) {
      const pb = c.array(mo.payloadBytes, `${p}.payloadBytes`, true);
      if (pb.length !== 2) c.fail(`${p}.payloadBytes`, 'must be [lo, hi]', pb);
      const [a, b] = pb as [unknown, unknown];
      const pbo = { lo: a, hi: b };
      const plo = c.number(pbo, 'lo', `${p}.payloadBytes`, { min: 0 });
      const phi = c.number(pbo, 'hi', `${p}.payloadBytes`, { min: 0 });
      if (phi < plo) c.fail(`${p}.payloadBytes`, 'must be [lo, hi] with lo <= hi', pb);
      if (plo === 0 && phi > 0) c.fail(`${p}.payloadBytes`, 'must start above 0 (drawn log-uniformly)', pb);
      payloadBytes = [plo, phi];
    }
    return {
      name: mo.name,
      share: c.number(mo, 'share', p, { above: 0, fallback: 1 }),
      costMs: c.number(mo, 'costMs', p, { above: 0 }),
      payloadBytes,
      costPerKiBMs: c.number(mo, 'costPerKiBMs', p, { min: 0, fallback: 0 }),
    };
  });
  const names = new Set<string>();
  methods.forEach((m, i) => {
    if (names.has(m.name)) c.fail(`methods[${i}].name`, 'repeats an earlier method', m.name);
    names.add(m.name);
  });

  const servers = c.array(o.servers, 'servers', true).map((s, i): ServerGroup => {
    const p = `servers[${i}]`;
    const so = c.object(s, p, [
      'count',
      'speed',
      'concurrency',
      'antagonistCpu',
      'methodSpeed',
      'perKiBFactor',
    ]);
    const g: ServerGroup = {
      count: c.number(so, 'count', p, { min: 1, max: 10_000, int: true, fallback: 1 }),
      speed: c.number(so, 'speed', p, { above: 0, fallback: 1 }),
      concurrency: c.number(so, 'concurrency', p, { min: 1, max: 100_000, int: true }),
      antagonistCpu: c.number(so, 'antagonistCpu', p, { min: 0, max: 1, fallback: 0 }),
    };
    if (so.methodSpeed !== undefined) {
      const known = methods.map((m) => m.name);
      const ms = so.methodSpeed;
      if (typeof ms !== 'object' || ms === null || Array.isArray(ms)) {
        c.fail(`${p}.methodSpeed`, 'must be an object of method name → speed factor', ms);
      }
      g.methodSpeed = {};
      for (const name of Object.keys(ms)) {
        if (!known.includes(name)) {
          c.fail(`${p}.methodSpeed`, `names "${name}", not a method of this scenario (${known.join(', ')})`);
        }
        g.methodSpeed[name] = c.number(ms as Record<string, unknown>, name, `${p}.methodSpeed`, {
          above: 0,
          max: 1000,
        });
      }
    }
    const perKiB = c.optionalNumber(so, 'perKiBFactor', p, { above: 0, max: 1000 });
    if (perKiB !== undefined) g.perKiBFactor = perKiB;
    return g;
  });
  const serverCount = servers.reduce((n, g) => n + g.count, 0);

  const events = c.array(o.events ?? [], 'events', false).map((e, i): EventSpec => {
    const p = `events[${i}]`;
    const eo = c.object(e, p, [
      'server',
      'fromS',
      'toS',
      'slowdown',
      'latencyMs',
      'errorRate',
      'errorLatencyMs',
      'pauseEveryS',
      'pauseMs',
      'antagonistCpu',
    ]);
    const ev: EventSpec = {
      server: c.number(eo, 'server', p, { min: 0, max: serverCount - 1, int: true }),
      fromS: c.number(eo, 'fromS', p, { min: 0, fallback: 0 }),
      toS: c.number(eo, 'toS', p, { min: 0, fallback: durationS }),
      slowdown: c.optionalNumber(eo, 'slowdown', p, { above: 0 }),
      latencyMs: c.optionalNumber(eo, 'latencyMs', p, { above: 0 }),
      errorRate: c.optionalNumber(eo, 'errorRate', p, { min: 0, max: 1 }),
      errorLatencyMs: c.number(eo, 'errorLatencyMs', p, { min: 0, fallback: 1 }),
      pauseEveryS: c.optionalNumber(eo, 'pauseEveryS', p, { above: 0 }),
      pauseMs: c.optionalNumber(eo, 'pauseMs', p, { above: 0 }),
      antagonistCpu: c.optionalNumber(eo, 'antagonistCpu', p, { min: 0, max: 1 }),
    };
    if (ev.toS <= ev.fromS) c.fail(`${p}.toS`, `must be after fromS (${ev.fromS})`, ev.toS);
    if ((ev.pauseEveryS === undefined) !== (ev.pauseMs === undefined)) {
      c.fail(p, 'must give pauseEveryS and pauseMs together');
    }
    if (eo.errorLatencyMs !== undefined && ev.errorRate === undefined) {
      c.fail(`${p}.errorLatencyMs`, 'needs errorRate');
    }
    if (
      ev.slowdown === undefined &&
      ev.latencyMs === undefined &&
      ev.errorRate === undefined &&
      ev.pauseEveryS === undefined &&
      ev.antagonistCpu === undefined
    ) {
      c.fail(
        p,
        'must have an effect: slowdown, latencyMs, errorRate, antagonistCpu or pauseEveryS with pauseMs',
      );
    }
    return ev;
  });

  const scenario: Scenario = {
    name: o.name,
    seed: c.number(o, 'seed', '', { min: 0, max: 2 ** 32 - 1, int: true, fallback: 1 }),
    durationS,
    warmupS,
    routers: c.number(o, 'routers', '', { min: 1, max: 1000, int: true, fallback: 1 }),
    load,
    deadlineMs,
    telemetry,
    methods,
    servers,
    events,
  };
  if (o.concurrency !== undefined) scenario.concurrency = parseConcurrency(c, o.concurrency);
  if (o.hedging !== undefined) scenario.hedging = parseHedging(c, o.hedging);
  if (o.timeout !== undefined) scenario.timeout = parseTimeout(c, o.timeout);
  if (o.cancelRunning !== undefined) {
    if (typeof o.cancelRunning !== 'boolean')
      c.fail('cancelRunning', 'must be true or false', o.cancelRunning);
    scenario.cancelRunning = o.cancelRunning;
  }
  if (scenario.concurrency && (scenario.hedging || scenario.timeout)) {
    c.fail('concurrency', 'does not go with hedging or timeout (a try would bypass the limiter)');
  }
  return scenario;
}

function parseConcurrency(c: Checker, v: unknown): NonNullable<BackendPoolSpec['concurrency']> {
  const p = 'concurrency';
  const co = c.object(v, p, [
    'algorithm',
    'initialLimit',
    'minLimit',
    'maxLimit',
    'targetLatency',
    'targetSuccessRate',
  ]);
  const out: NonNullable<BackendPoolSpec['concurrency']> = {};
  if (co.algorithm !== undefined) {
    const known = limitNames();
    if (typeof co.algorithm !== 'string' || !known.includes(co.algorithm)) {
      c.fail(`${p}.algorithm`, `must be one of ${known.join(', ')}`, co.algorithm);
    }
    out.algorithm = co.algorithm as NonNullable<typeof out.algorithm>;
  }
  for (const k of ['initialLimit', 'minLimit', 'maxLimit'] as const) {
    if (co[k] !== undefined) out[k] = c.number(co, k, p, { min: 1, max: 100_000, int: true });
  }
  const min = out.minLimit ?? 1;
  const init = out.initialLimit ?? 20;
  const max = out.maxLimit ?? 1000;
  if (!(min <= init && init <= max)) {
    c.fail(p, `must satisfy minLimit (${min}) <= initialLimit (${init}) <= maxLimit (${max})`);
  }
  if (co.targetLatency !== undefined) {
    try {
      parseDuration(String(co.targetLatency));
    } catch (e) {
      c.fail(`${p}.targetLatency`, errorMessage(e));
    }
    out.targetLatency = String(co.targetLatency);
  }
  if (co.targetSuccessRate !== undefined) {
    out.targetSuccessRate = c.number(co, 'targetSuccessRate', p, { min: 0, max: 1 });
  }
  return out;
}

/** Reads and checks a scenario file; errors name the file and the field. */
export async function loadScenario(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SibylError('ERR_CONFIG_INVALID', `${path}: cannot read scenario: ${errorMessage(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SibylError('ERR_CONFIG_INVALID', `${path}: not valid JSON: ${errorMessage(e)}`);
  }
  return parseScenario(json, path);
}

/** The servers in order, groups expanded (server numbers in events refer to these). */
export function expandServers(s: Scenario): ServerSpec[] {
  const out: ServerSpec[] = [];
  for (const g of s.servers) {
    const costs = groupCosts(s, g);
    for (let k = 0; k < g.count; k++) {
      const spec: ServerSpec = {
        index: out.length,
        speed: g.speed,
        concurrency: g.concurrency,
        antagonistCpu: g.antagonistCpu,
      };
      if (costs) spec.costs = costs;
      out.push(spec);
    }
  }
  return out;
}

/**
 * A group's cost per method when `methodSpeed` or `perKiBFactor` is given: the method's speed factor
 * divides its whole work, the per-KiB factor multiplies its per-KiB part. Undefined otherwise, so the
 * servers of a plain scenario compute their work exactly as before these fields existed.
 */
function groupCosts(s: Scenario, g: ServerGroup): MethodCost[] | undefined {
  if (g.methodSpeed === undefined && g.perKiBFactor === undefined) return undefined;
  return s.methods.map((m) => {
    const f = g.methodSpeed?.[m.name] ?? 1;
    return { costMs: m.costMs / f, perKiBMs: (m.costPerKiBMs * (g.perKiBFactor ?? 1)) / f };
  });
}

/** E[X] for X log-uniform on [lo, hi]: (hi − lo) / ln(hi / lo). */
export function meanLogUniform(lo: number, hi: number): number {
  return hi > lo && lo > 0 ? (hi - lo) / Math.log(hi / lo) : lo;
}

/**
 * The mean work of a call at speed 1, ms: Σ share · (costMs + costPerKiBMs · E[KiB]) / Σ share, with
 * the methods' own costs or one server's (`costs`, from expandServers).
 */
function meanCostMs(s: Scenario, costs?: readonly MethodCost[]): number {
  let total = 0;
  let shares = 0;
  s.methods.forEach((m, i) => {
    const kib = meanLogUniform(m.payloadBytes[0], m.payloadBytes[1]) / 1024;
    const c = costs?.[i];
    total += m.share * (c ? c.costMs + c.perKiBMs * kib : m.costMs + m.costPerKiBMs * kib);
    shares += m.share;
  });
  return total / shares;
}

/** A server's speed with its neighbour's load: speed · (1 − antagonistCpu / 2). */
export function effectiveSpeed(s: ServerSpec): number {
  return s.speed * (1 - s.antagonistCpu / 2);
}

/**
 * The pool's capacity in calls per second with no events: Σ concurrency · effective speed over the
 * mean call cost (bench/scenarios/README.md). Slowdowns, pauses, failures and antagonist events are not
 * counted against it. Where servers cost differently (`methodSpeed`, `perKiBFactor`) each server's
 * share is its slots' speed over its own mean cost, for the scenario's mix of methods.
 */
export function capacityRps(s: Scenario): number {
  const servers = expandServers(s);
  if (servers.some((srv) => srv.costs)) {
    let rps = 0;
    for (const srv of servers)
      rps += (1000 * srv.concurrency * effectiveSpeed(srv)) / meanCostMs(s, srv.costs);
    return rps;
  }
  let slotSpeed = 0;
  for (const srv of servers) slotSpeed += srv.concurrency * effectiveSpeed(srv);
  return (1000 * slotSpeed) / meanCostMs(s);
}

/** The offered load at time tMs, in calls per second (utilization is of capacity). */
export function offeredRps(s: Scenario, tMs: number, capacity = capacityRps(s)): number {
  const base = s.load.utilization ?? (s.load.rps as number);
  let level = base;
  const r = s.load.ramp;
  if (r) {
    const t = tMs / 1000;
    if (t >= r.toS) level = r.to;
    else if (t > r.fromS) level = base + ((r.to - base) * (t - r.fromS)) / (r.toS - r.fromS);
  }
  return s.load.utilization !== undefined ? level * capacity : level;
}

/** The highest offered load over the run, calls per second (for thinning the arrival stream). */
export function peakRps(s: Scenario, capacity = capacityRps(s)): number {
  const base = offeredRps(s, 0, capacity);
  return s.load.ramp ? Math.max(base, offeredRps(s, s.durationS * 1000, capacity)) : base;
}
