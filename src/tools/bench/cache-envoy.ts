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
 * A cache hit with Envoy as the data plane (`sibyl bench cache --envoy`): Envoy programmed by sibyl's
 * ADS sends the tier's cacheable method through a sibyl router (src/xds/cache-path.ts), which answers
 * hits from its L1 and forwards misses to the backend. One call at a time from a grpc-js client, in one
 * run and side by side:
 *  - direct: the client straight to the backend (new requests);
 *  - Envoy, no tier: the pool without a cache, so Envoy calls the backend itself (new requests);
 *  - miss: Envoy → router → backend (new requests; the router counts each an L1 miss);
 *  - hit: the same requests again (the router counts each an L1 hit; the backend is not called).
 * Each router phase is checked against the router's counters, and the no-tier phase must reach the
 * router not at all, so a phase that did not take the path it names fails instead of printing figures.
 */
export interface EnvoyCacheOptions {
  calls: number;
  warmup: number;
  backendLatencyMs: number;
  responseBytes: number;
  envoyBin: string;
  /** Envoy's --base-id, so it runs beside other Envoys. */
  baseId: number;
  log?: (line: string) => void;
}

export interface EnvoyCacheLatency {
  direct: Percentiles;
  envoy: Percentiles;
  miss: Percentiles;
  hit: Percentiles;
}

const KEY = `bench/${POOL}`;

export async function measureEnvoyCache(o: EnvoyCacheOptions): Promise<EnvoyCacheLatency> {
  const say = o.log ?? (() => undefined);
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-bench-cache-envoy-'));
  const children: Child[] = [];
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
    const input = poolInput(KEY, [backend.listening], { balancing: { policy: 'RoundRobin' } });
    const withTier = { ...input, cache: { methods: [ECHO], routers: [router.listening] } };
    ads.xds.setPool(KEY, withTier);
    const envoy = await EnvoyProcess.create(
      'envoy',
      o.baseId,
      { server: ads.address, insecure: true, nodeId: 'bench-envoy-cache' },
      { bin: o.envoyBin, dir },
    );
    children.push(track('envoy', envoy.start()));
    await envoy.ready();
    await poll(
      async () =>
        (await envoy.adminGet('/clusters')).includes(`${routersClusterName(KEY)}::${router.listening}`),
      'envoy to take the router into the cacheable route',
    );
    const run = randomUUID().slice(0, 8);
    const request = (tag: string) => (i: number) => ({
      message: `${run}-${tag}-${i}`,
      responseSize: o.responseBytes,
    });
    const n = o.calls;
    const measure = async <T>(address: string, body: (c: Caller) => Promise<T>): Promise<T> => {
      const c = new Caller(address);
      try {
        for (let i = 0; i < o.warmup; i++) await c.echo(request(`warm-${address}`)(i));
        return await body(c);
      } finally {
        c.close();
      }
    };
    say('  direct: the client straight to the backend');
    const direct = await measure(backend.listening, (c) => c.timed(n, request('direct')));
    say('  through Envoy → router: misses, then the same requests again (L1 hits)');
    const [miss, hit] = await measure(envoy.listen, async (c) => [
      await checked(router.metrics, 'l1', { hit: 0, miss: n }, 'the miss phase', () =>
        c.timed(n, request('cached')),
      ),
      await checked(router.metrics, 'l1', { hit: n, miss: 0 }, 'the hit phase', () =>
        c.timed(n, request('cached')),
      ),
    ]);
    say('  through Envoy with no tier: Envoy straight to the backend');
    ads.xds.setPool(KEY, input);
    await poll(
      async () => !(await envoy.adminGet('/clusters')).includes(router.listening),
      'envoy to drop the cacheable route',
    );
    const viaEnvoy = await measure(envoy.listen, (c) =>
      checked(router.metrics, 'l1', { hit: 0, miss: 0 }, 'the no-tier phase', () =>
        c.timed(n, request('plain')),
      ),
    );
    const dead = children.filter((c) => c.proc.exitCode !== null);
    if (dead.length)
      throw new Error(
        `stopped during the runs, so the figures are void: ${dead.map((c) => c.name).join(', ')}`,
      );
    return { direct: pct(direct), envoy: pct(viaEnvoy), miss: pct(miss), hit: pct(hit) };
  } finally {
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
