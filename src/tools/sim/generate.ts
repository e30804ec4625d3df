import type { Random } from '../../util/clock.js';
import { logUniform, stream } from './random.js';

/**
 * Scenarios drawn from families, for `sibyl bench sim --generate N --seed S`: a suite no policy can be
 * tuned to file by file. Scenario i of seed S depends on S and i only (its own random stream), so a
 * suite of 100 starts with the suite of 10, and a scenario written out reruns alone with the same
 * figures (its `seed` field is drawn here too).
 *
 * Every scenario shares a base, drawn per scenario:
 * - 6–12 servers (speed 1, `concurrency` 2–6, one value per scenario), 2–8 routers;
 * - one method, `/gen.Svc/Get`, costing 4–20 ms (log-uniform), payload 200 B–2 KB;
 * - load: utilisation 0.5–0.85 of capacity; 20–30 s simulated, 3 s warm-up, deadline 1 s,
 *   telemetry every second.
 * Then each family, taken in turn (scenario i is family i mod 6), changes one thing.
 */

/** The families, in the order scenarios take them. */
export const FAMILIES = ['heterogeneous', 'faults', 'pauses', 'methods', 'antagonists', 'overload'] as const;
export type Family = (typeof FAMILIES)[number];

/** The scenario file format (bench/scenarios/README.md), as written to JSON. */
export interface ScenarioFile {
  name: string;
  seed: number;
  durationS: number;
  warmupS: number;
  routers: number;
  load: { utilization: number; ramp?: { to: number; fromS: number; toS: number } };
  deadlineMs: number;
  telemetry: { metricsIntervalS: number; reportIntervalS: number };
  methods: FileMethod[];
  servers: FileServerGroup[];
  events: FileEvent[];
  concurrency?: { algorithm: string };
}

export interface FileMethod {
  name: string;
  share: number;
  costMs: number;
  payloadBytes: [number, number];
  costPerKiBMs?: number;
}

export interface FileServerGroup {
  count: number;
  speed: number;
  concurrency: number;
  antagonistCpu?: number;
  methodSpeed?: Record<string, number>;
  perKiBFactor?: number;
}

export interface FileEvent {
  server: number;
  fromS?: number;
  toS?: number;
  slowdown?: number;
  errorRate?: number;
  errorLatencyMs?: number;
  pauseEveryS?: number;
  pauseMs?: number;
  antagonistCpu?: number;
}

export interface GeneratedScenario {
  family: Family;
  file: ScenarioFile;
}

const GET = '/gen.Svc/Get';
const SEARCH = '/gen.Svc/Search';
const PUT = '/gen.Svc/Put';

const round = (x: number, digits: number) => Number(x.toFixed(digits));
const uniform = (r: Random, lo: number, hi: number, digits = 2) => round(lo + r() * (hi - lo), digits);
const int = (r: Random, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const logU = (r: Random, lo: number, hi: number, digits = 2) => round(logUniform(r, lo, hi), digits);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

/** `k` distinct server numbers out of `n`, drawn without replacement. */
function servers(r: Random, n: number, k: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(r() * (n - i));
    [all[i], all[j]] = [all[j] as number, all[i] as number];
  }
  return all.slice(0, k);
}

/** A window inside the measured part of the run: starts in its first half, lasts 5 s to the end. */
function window(r: Random, f: ScenarioFile): { fromS: number; toS: number } {
  const fromS = uniform(r, f.warmupS, f.durationS / 2, 1);
  return { fromS, toS: Math.min(f.durationS, round(fromS + uniform(r, 5, f.durationS - fromS), 1)) };
}

/** `n` servers split into `k` groups of at least one server each, at speed 1 and `conc` slots. */
function split(r: Random, n: number, k: number, conc: number): FileServerGroup[] {
  const cuts = servers(r, n - 1, k - 1)
    .map((c) => c + 1)
    .sort((a, b) => a - b);
  const bounds = [0, ...cuts, n];
  return bounds.slice(1).map((b, i) => ({ count: b - (bounds[i] as number), speed: 1, concurrency: conc }));
}

function base(r: Random, name: string): { file: ScenarioFile; n: number; conc: number } {
  const n = int(r, 6, 12);
  const conc = int(r, 2, 6);
  const file: ScenarioFile = {
    name,
    seed: int(r, 1, 2 ** 31 - 1),
    durationS: int(r, 20, 30),
    warmupS: 3,
    routers: int(r, 2, 8),
    load: { utilization: uniform(r, 0.5, 0.85) },
    deadlineMs: 1000,
    telemetry: { metricsIntervalS: 1, reportIntervalS: 1 },
    methods: [{ name: GET, share: 1, costMs: logU(r, 4, 20), payloadBytes: [200, 2000] }],
    servers: [{ count: n, speed: 1, concurrency: conc }],
    events: [],
  };
  return { file, n, conc };
}

/** Heterogeneous speeds: 2–4 groups, the first at speed 1, the others 0.2–2 (log-uniform). */
function heterogeneous(r: Random, f: ScenarioFile, n: number, conc: number): void {
  f.servers = split(r, n, int(r, 2, 4), conc).map((g, i) => ({
    ...g,
    speed: i === 0 ? 1 : logU(r, 0.2, 2),
  }));
}

/**
 * Failing and slowed servers, alone and together: one of a failure (errorRate 0.2–1, answered after
 * 1–50 ms), a slowdown (2–20×), both on different servers, or both on one server, each on 1–3 servers
 * over a window starting in the run's first half and lasting 5 s or more.
 */
function faults(r: Random, f: ScenarioFile, n: number): void {
  const mode = pick(r, ['fail', 'slow', 'apart', 'together'] as const);
  const hit = servers(r, n, int(r, 1, 3) * (mode === 'apart' ? 2 : 1));
  const half = mode === 'apart' ? hit.length / 2 : hit.length;
  hit.forEach((server, i) => {
    const e: FileEvent = { server, ...window(r, f) };
    const failing = mode === 'fail' || mode === 'together' || (mode === 'apart' && i < half);
    const slowed = mode === 'slow' || mode === 'together' || (mode === 'apart' && i >= half);
    if (slowed) e.slowdown = logU(r, 2, 20, 1);
    if (failing) {
      e.errorRate = uniform(r, 0.2, 1);
      e.errorLatencyMs = logU(r, 1, 50, 0);
    }
    f.events.push(e);
  });
}

/** Pauses: 1 to half the servers stop the world for 50–500 ms every 2–10 s, each at its own phase. */
function pauses(r: Random, f: ScenarioFile, n: number): void {
  for (const server of servers(r, n, int(r, 1, Math.ceil(n / 2)))) {
    const pauseEveryS = uniform(r, 2, 10, 1);
    f.events.push({
      server,
      fromS: uniform(r, 0, pauseEveryS, 1),
      pauseEveryS,
      pauseMs: logU(r, 50, 500, 0),
    });
  }
}

/**
 * Method and payload interactions: Get (1–5 ms, 50–90% of calls) with Search (10–40 ms) or Put
 * (1–3 ms plus 0.05–0.3 ms per KiB of a 1 KB to 50–400 KB payload), or all three; then a cold index
 * (one group at methodSpeed 0.1–0.5 for Search), a slow disk (one group at perKiBFactor 2–8), or
 * both on different groups of 1 to a third of the servers.
 */
function methods(r: Random, f: ScenarioFile, n: number, conc: number): void {
  const mode = pick(r, ['cold', 'disk', 'both'] as const);
  const getShare = uniform(r, 0.5, 0.9);
  const rest = mode === 'both' ? [SEARCH, PUT] : [mode === 'cold' ? SEARCH : PUT];
  f.methods = [{ name: GET, share: getShare, costMs: logU(r, 1, 5), payloadBytes: [200, 2000] }];
  for (const name of rest) {
    const share = round((1 - getShare) / rest.length, 3);
    if (name === SEARCH) {
      f.methods.push({ name, share, costMs: logU(r, 10, 40), payloadBytes: [200, 5000] });
    } else {
      const hi = Math.round(logUniform(r, 50_000, 400_000));
      f.methods.push({
        name,
        share,
        costMs: logU(r, 1, 3),
        payloadBytes: [1000, hi],
        costPerKiBMs: logU(r, 0.05, 0.3, 3),
      });
    }
  }
  // the plain servers come first and keep at least a third of the pool: each odd group has 1 to n/3
  const sizes = rest.map(() => int(r, 1, Math.floor(n / 3)));
  const plain = n - sizes.reduce((a, b) => a + b, 0);
  f.servers = [{ count: plain, speed: 1, concurrency: conc }];
  rest.forEach((name, i) => {
    const g: FileServerGroup = { count: sizes[i] as number, speed: 1, concurrency: conc };
    if (name === SEARCH) g.methodSpeed = { [SEARCH]: uniform(r, 0.1, 0.5) };
    else g.perKiBFactor = uniform(r, 2, 8, 1);
    f.servers.push(g);
  });
}

/**
 * Antagonists: a neighbour's CPU load that stays (one or two groups at antagonistCpu 0.2–0.9), comes
 * and goes (events at 0.5–1 on 1–3 servers over windows as for faults), or both, where an event may also
 * lift a standing antagonist (antagonistCpu 0 for its window).
 */
function antagonists(r: Random, f: ScenarioFile, n: number, conc: number): void {
  const mode = pick(r, ['static', 'events', 'both'] as const);
  if (mode !== 'events') {
    f.servers = split(r, n, int(r, 2, 3), conc).map((g, i) =>
      i === 0 ? g : { ...g, antagonistCpu: uniform(r, 0.2, 0.9) },
    );
  }
  if (mode === 'static') return;
  for (const server of servers(r, n, int(r, 1, 3))) {
    const standing = mode === 'both' && server >= (f.servers[0] as FileServerGroup).count;
    f.events.push({ server, ...window(r, f), antagonistCpu: standing && r() < 0.5 ? 0 : uniform(r, 0.5, 1) });
  }
}

/**
 * Overload ramps: from the base load to 1.1–1.8× capacity over 3–8 s starting at 4–10 s, held to the
 * end; with each router's Gradient2 limiter half the time; half the time on two groups (the second at
 * speed 0.3–0.8).
 */
function overload(r: Random, f: ScenarioFile, n: number, conc: number): void {
  const fromS = uniform(r, 4, 10, 1);
  f.load.ramp = { to: uniform(r, 1.1, 1.8), fromS, toS: round(fromS + uniform(r, 3, 8, 1), 1) };
  if (r() < 0.5) f.concurrency = { algorithm: 'Gradient2' };
  if (r() < 0.5)
    f.servers = split(r, n, 2, conc).map((g, i) => (i === 0 ? g : { ...g, speed: uniform(r, 0.3, 0.8) }));
}

/** Scenario `index` of the suite drawn with `seed`. */
export function generateScenario(seed: number, index: number): GeneratedScenario {
  const family = FAMILIES[index % FAMILIES.length] as Family;
  const r = stream(seed, `generate/${index}`);
  const name = `gen-${seed}-${String(index).padStart(3, '0')}-${family}`;
  const { file, n, conc } = base(r, name);
  if (family === 'heterogeneous') heterogeneous(r, file, n, conc);
  else if (family === 'faults') faults(r, file, n);
  else if (family === 'pauses') pauses(r, file, n);
  else if (family === 'methods') methods(r, file, n, conc);
  else if (family === 'antagonists') antagonists(r, file, n, conc);
  else overload(r, file, n, conc);
  return { family, file };
}

/** The first `count` scenarios of the suite drawn with `seed`. */
export function generateScenarios(count: number, seed: number): GeneratedScenario[] {
  return Array.from({ length: count }, (_, i) => generateScenario(seed, i));
}
