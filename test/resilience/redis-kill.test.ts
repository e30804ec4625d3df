import type { ChildProcess } from 'node:child_process';
import { Load, formatCodes, metricSum, scrape, summarize } from '../support/load.js';
import { killAll, startBackendProcess, startRouterProcess, writeRoutes } from '../support/procs.js';
import { killRedis, startRedis } from '../support/redis.js';
import { freePort, waitFor } from '../support/wait.js';
import { ms, runCase } from './report.js';

/**
 * A `sibyl router` process with an L1 (in memory, entries kept 1 s) and L2 (a private Redis) cache on
 * Echo carries a steady load over a few hundred keys; Redis is SIGKILLed, left dead for a few seconds,
 * then started again on the same port (empty: no persistence). No call may fail because of it, and
 * L2 must be used again once Redis is back.
 */
const RPS = 200;
const KEYS = 400;
const ECHO = '/sibyl.demo.v1.Demo/Echo';
/** Calls answered while Redis is dead, and after it is back (a few seconds' worth each). */
const PHASE_CALLS = 3 * RPS;

let redis: ChildProcess | undefined;
afterAll(async () => {
  if (redis) await killRedis(redis);
  await killAll();
});

it('Redis killed and restarted under load: zero failed calls; L2 used again once it is back', async () => {
  await runCase('redis-kill', async (r) => {
    const port = await freePort();
    redis = await startRedis(port);
    const backends = await Promise.all(
      [0, 1].map((i) => startBackendProcess(`redis-b${i}`, ['--latency-ms', '2', '--jitter', '0.2'])),
    );
    const pool = {
      name: 'demo',
      match: { services: ['sibyl.demo.v1.Demo'] },
      endpoints: backends.map((b) => ({ address: b.info.listening })),
      balancing: { policy: 'LeastRequest' },
      cache: {
        methods: [{ method: ECHO, ttl: '60s' }],
        l1: { ttl: '1s' },
        l2: { redis: { url: `redis://127.0.0.1:${port}` }, timeout: '50ms' },
      },
    };
    const router = await startRouterProcess('redis-router', ['--config', writeRoutes('redis', [pool])]);
    const l2 = async () => {
      const t = await scrape(router.info.metrics as string);
      const n = (result: string) => metricSum(t, 'sibyl_cache_requests_total', { tier: 'l2', result });
      return { hit: n('hit'), miss: n('miss'), error: n('error') };
    };
    const load = new Load({
      targets: [router.info.listening as string],
      rps: RPS,
      deadlineMs: 2000,
      shape: (i) => ({ req: { message: `key-${i % KEYS}`, responseSize: 64 } }),
    });
    try {
      load.start();
      await waitFor(async () => (await l2()).hit > 50, {
        timeoutMs: 15_000,
        what: 'L2 hits before the kill',
      });
      const before = await l2();
      const tKill = performance.now();
      await killRedis(redis);
      // Dead for a phase of calls: L2 fails (behind its breaker) while the load goes on.
      let down = before;
      await waitFor(
        async () => {
          down = await l2();
          return down.error > before.error && load.answered(tKill) >= PHASE_CALLS;
        },
        { timeoutMs: 60_000, what: `L2 errors and ${PHASE_CALLS} calls answered with Redis dead` },
      );
      const tRestart = performance.now();
      redis = await startRedis(port);
      const back = await waitFor(
        async () => {
          const x = await l2();
          return x.hit > down.hit ? x : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'an L2 hit after Redis came back' },
      );
      const backMs = performance.now() - tRestart;
      const tBack = performance.now();
      await waitFor(() => load.answered(tBack) >= PHASE_CALLS, {
        timeoutMs: 60_000,
        what: `${PHASE_CALLS} calls answered after the first L2 hit`,
      });
      const after = await l2();
      await load.stop();

      const all = summarize(load.outcomes);
      const phase = (from: number, to: number) => {
        const s = summarize(load.outcomes.filter((o) => o.atMs >= from && o.atMs < to));
        return `${s.calls} calls, ${s.failed} failed, p50 ${ms(s.p50Ms)}, p99 ${ms(s.p99Ms)}`;
      };
      r.figure('cache', 'Echo cached: L1 (entries kept 1 s) and L2 Redis (timeout 50 ms), TTL 60 s');
      r.figure('load', `${RPS} calls/s over ${KEYS} keys, deadline 2 s`);
      r.figure('calls', `${all.calls}: ${formatCodes(all.codes)}`);
      r.figure('before the kill', phase(0, tKill));
      r.figure('while Redis was dead', phase(tKill, tRestart));
      r.figure('after the restart', phase(tRestart, performance.now()));
      r.figure(
        'L2 lookups while Redis was dead',
        `${down.error - before.error} errors, ${down.hit - before.hit} hits, ${down.miss - before.miss} misses (a failing tier reads as a miss, behind its own breaker)`,
      );
      r.figure('first L2 hit after the restart', `${ms(backMs)} after Redis was started again`);
      r.figure(`L2 hits in the ${PHASE_CALLS} calls after that`, after.hit - back.hit);

      r.check('failed calls', '0', all.failed, all.failed === 0);
      r.check(
        'L2 used again once Redis is back',
        'L2 hits after the restart',
        `${after.hit - down.hit} hits`,
        after.hit - down.hit > 0,
      );
      expect(router.alive).toBe(true);
    } finally {
      load.close();
    }
  });
});
