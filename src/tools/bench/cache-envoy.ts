import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { routersClusterName } from '../../xds/cache-path.js';
import { startAds, poolInput, type Ads } from './ads.js';
import { Caller, ECHO, POOL, checked, pct, type Percentiles } from './cache-latency.js';
import { EnvoyProcess } from './envoy.js';
import { poll, startBenchBackend, startRouterWithPools, stop, track, type Child } from './processes.js';

/**
 * A cache hit with Envoy as the data plane (`sibyl bench cache --envoy-path`): Envoy programmed by
 * sibyl's ADS sends the tier's cacheable method through a sibyl router (src/xds/cache-path.ts), which
 * answers hits from its L1 and forwards misses to the backend. One call at a time from grpc-js clients,
 * four paths to one backend:
 *  - direct: the client straight to the backend (new requests);
 *  - Envoy, no tier: a second Envoy whose fleet routes only a pool without a tier (fleet namespace
 *    "plain"), so Envoy calls the backend itself (new requests);
 *  - miss: Envoy → router → backend (new requests; the router counts each an L1 miss);
 *  - hit: the same requests again (the router counts each an L1 hit; the backend is not called).
 * The paths take turns in rounds of `calls / rounds` calls, so the machine's load, which drifts on a
 * shared machine, weighs on each alike. Every round of the router's paths is checked against the
 * router's counters, and the no-tier path must reach the router not at all: a path that did not take
 * the way it names fails the benchmark instead of printing figures.
 */
export interface EnvoyCacheOptions {
  calls: number;
  warmup: number;
  backendLatencyMs: number;
  responseBytes: number;
  envoyBin: string;
  /** The first Envoy's --base-id; the second takes the next, so they run beside other Envoys. */
  baseId: number;
  log?: (line: string) => void;
}

export interface EnvoyCacheLatency {
  direct: Percentiles;
  envoy: Percentiles;
  miss: Percentiles;
  hit: Percentiles;
}

const ROUNDS = 10;
const WITH_TIER = `bench/${POOL}`;
const WITHOUT_TIER = `plain/${POOL}`;

export async function measureEnvoyCache(o: EnvoyCacheOptions): Promise<EnvoyCacheLatency> {
  const say = o.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-bench-cache-envoy-'));
  const children: Child[] = [];
  const callers: Caller[] = [];
  let ads: Ads | undefined;
  try {
    const backend = await startBenchBackend('backend', o.backendLatencyMs);
    children.push(backend.child);
    const pool = {
      name: POOL,
      match: { services: ['sibyl.demo.v1.Demo'] },
      endpoints: [{ address: backend.listening }],
      balancing: { policy: 'RoundRobin' },
      cache: { methods: [{ method: ECHO, ttl: '1h' }], l1: { maxEntries: 100_000 } },
    };
    const router = await startRouterWithPools('router', path.join(dir, 'router.json'), [pool], '127.0.0.1:0');
    children.push(router.child);
    ads = await startAds({ pushIntervalMs: 100 });
    const spec = { balancing: { policy: 'RoundRobin' as const } };
    ads.xds.setPool(WITH_TIER, {
      ...poolInput(WITH_TIER, [backend.listening], spec),
      cache: { methods: [ECHO], routers: [router.listening] },
    });
    ads.xds.setPool(WITHOUT_TIER, poolInput(WITHOUT_TIER, [backend.listening], spec));
    const envoyFor = async (name: string, namespace: string, baseId: number) => {
      const e = await EnvoyProcess.create(
        name,
        baseId,
        { server: ads?.address ?? '', insecure: true, nodeId: name, fleet: name, namespace },
        { bin: o.envoyBin, dir },
      );
      children.push(track(name, e.start()));
      await e.ready();
      return e;
    };
    const cached = await envoyFor('envoy-tier', 'bench', o.baseId);
    const plain = await envoyFor('envoy-plain', 'plain', o.baseId + 1);
    await poll(
      async () =>
        (await cached.adminGet('/clusters')).includes(
          `${routersClusterName(WITH_TIER)}::${router.listening}`,
        ),
      'envoy to take the router into the cacheable route',
    );
    const run = randomUUID().slice(0, 8);
    const request = (tag: string) => (i: number) => ({
      message: `${run}-${tag}-${i}`,
      responseSize: o.responseBytes,
    });
    const caller = async (address: string, tag: string) => {
      const c = new Caller(address);
      callers.push(c);
      for (let i = 0; i < o.warmup; i++) await c.echo(request(`warm-${tag}`)(i));
      return c;
    };
    say('  warming up: the client straight to the backend, through Envoy alone, through Envoy → router');
    const [toBackend, toPlain, toCached] = [
      await caller(backend.listening, 'direct'),
      await caller(plain.listen, 'plain'),
      await caller(cached.listen, 'cached'),
    ];
    const out = { direct: [] as number[], envoy: [] as number[], miss: [] as number[], hit: [] as number[] };
    const per = Math.ceil(o.calls / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      say(`  round ${r + 1}/${ROUNDS}: ${per} calls on each path`);
      const keys = request(`r${r}`);
      out.direct.push(...(await toBackend.timed(per, request(`direct-${r}`))));
      out.envoy.push(
        ...(await checked(router.metrics, 'l1', { hit: 0, miss: 0 }, 'the no-tier path', () =>
          toPlain.timed(per, request(`plain-${r}`)),
        )),
      );
      out.miss.push(
        ...(await checked(router.metrics, 'l1', { hit: 0, miss: per }, 'the miss path', () =>
          toCached.timed(per, keys),
        )),
      );
      out.hit.push(
        ...(await checked(router.metrics, 'l1', { hit: per, miss: 0 }, 'the hit path', () =>
          toCached.timed(per, keys),
        )),
      );
    }
    const dead = children.filter((c) => c.proc.exitCode !== null);
    if (dead.length)
      throw new Error(
        `stopped during the runs, so the figures are void: ${dead.map((c) => c.name).join(', ')}`,
      );
    return { direct: pct(out.direct), envoy: pct(out.envoy), miss: pct(out.miss), hit: pct(out.hit) };
  } finally {
    for (const c of callers) c.close();
    await Promise.all([...children.map(stop), ads?.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The table: p50 and p99 of each path and each as a ratio of the direct path's. */
export function formatEnvoyCache(l: EnvoyCacheLatency): string[] {
  const row = (name: string, p: Percentiles) =>
    `| ${name} | ${p.p50.toFixed(3)} ms | ${p.p99.toFixed(3)} ms | ${(p.p50 / l.direct.p50).toFixed(2)}× | ${(p.p99 / l.direct.p99).toFixed(2)}× |`;
  return [
    '| path (Echo, one call at a time) | p50 | p99 | p50 ÷ direct | p99 ÷ direct |',
    '|---|---|---|---|---|',
    row('direct to the backend', l.direct),
    row('Envoy → backend (no tier)', l.envoy),
    row('Envoy → router → backend (miss)', l.miss),
    row('Envoy → router, L1 hit', l.hit),
    '',
    `A hit through Envoy and the router takes ${(l.hit.p50 / l.direct.p50).toFixed(2)}× the direct path's p50 and ${(l.hit.p50 / l.miss.p50).toFixed(2)}× a miss's.`,
  ];
}
