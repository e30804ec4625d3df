import { Load, formatCodes, metricSum, scrape, summarize } from '../support/load.js';
import {
  controlBackend,
  killAll,
  startBackendProcess,
  startRouterProcess,
  writeRoutes,
  type SibylProcess,
} from '../support/procs.js';
import { waitFor } from '../support/wait.js';
import { ms, pct, runCase } from './report.js';

/**
 * One of four backends becomes a black hole: its process keeps its connections, takes every call and
 * answers HTTP/2 pings, but never answers a call (`POST /control {"pause": true}`; from outside it is
 * a hung server, not a dead one, so nothing fails fast). Hedged unary calls (Echo, idempotent) it
 * takes must be rescued by their hedges; unhedged streaming calls (ClientStream) sent there must be
 * ended by the pool's timeout; and the router must stop sending to it (its breaker opens on those
 * deadline failures; hedged-away calls are cancellations, which breakers do not count). Latencies are
 * figures: a loaded machine stretches them without changing what happened.
 */
const ECHO_RPS = 150;
const STREAM_RPS = 20;
/**
 * The pool's timeout: the router ends a call the black hole holds once it passes (DEADLINE_EXCEEDED,
 * counted against the endpoint). Long enough that calls to the healthy backends do not meet it on a
 * loaded machine: at load average 13 their slowest took 0.8 s, and with 500 ms they timed out too.
 */
const TIMEOUT_MS = 2000;
/** Echo's own deadline is past the pool's timeout, so the router's timeout ends them and counts it. */
const ECHO_DEADLINE_MS = 2 * TIMEOUT_MS;
/**
 * How late past its deadline a call may end and still count as ended by it: the black hole never
 * answers, so any end is the deadline's; this is timer and scheduling slack on a busy two-core machine
 * (at load average 12–16 a stream ended 281 ms past its 500 ms).
 */
const SLACK_MS = 1000;
/** Circuit breaker: failures that open it. */
const THRESHOLD = 5;
/** Echo calls answered before the black hole appears (two seconds' worth). */
const WARM_CALLS = 2 * ECHO_RPS;
/** Attempts the backends receive in the window once it is ejected (about five seconds' worth). */
const WINDOW_ATTEMPTS = 5 * (ECHO_RPS + STREAM_RPS);

afterAll(killAll);

it('a black-hole backend: hedges rescue its calls, deadlines end the rest, and it is ejected', async () => {
  await runCase('black-hole', async (r) => {
    const backends = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        startBackendProcess(`hole-b${i}`, ['--latency-ms', '5', '--jitter', '0.2', '--concurrency', '64']),
      ),
    );
    const pool = {
      name: 'demo',
      match: { services: ['sibyl.demo.v1.Demo'] },
      endpoints: backends.map((b) => ({ address: b.info.listening })),
      // RoundRobin: nothing but the breaker keeps calls from it (a latency-aware policy would also learn
      // to avoid it, which would hide whether the breaker ejects it).
      balancing: { policy: 'RoundRobin' },
      idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
      // Hedging at the p90 costs ~10% of calls; the black hole takes a quarter of the picks until it is
      // ejected: a budget under ~35% would leave some of its calls unhedged (they then meet the deadline).
      hedging: { enabled: true, delay: 'Predicted', maxPercent: 50 },
      timeout: { default: `${TIMEOUT_MS}ms` },
      circuitBreaker: {
        failureThreshold: THRESHOLD,
        recoveryTimeout: '30s',
        halfOpenMaxCalls: 1,
        maxEjectionPercent: 50,
      },
    };
    const router = await startRouterProcess('hole-router', ['--config', writeRoutes('hole', [pool])]);
    const target = router.info.listening as string;
    const echo = new Load({ targets: [target], rps: ECHO_RPS, deadlineMs: ECHO_DEADLINE_MS });
    // No deadline of their own: the pool's timeout gives them one at the router, which then answers
    // DEADLINE_EXCEEDED itself and counts it against the endpoint. (A client's own deadline ends the
    // call as a cancellation at the router, which breakers do not count.)
    const streams = new Load({ targets: [target], rps: STREAM_RPS, deadlineMs: 0, method: 'ClientStream' });
    try {
      echo.start();
      streams.start();
      // Warm: the hedging delay (the predicted p90) rests on calls every backend answered.
      await waitFor(
        () =>
          echo.answered() >= WARM_CALLS &&
          streams.answered() > 0 &&
          backends.every((b) => echo.answered(0, b.name) > 0),
        { timeoutMs: 60_000, what: `${WARM_CALLS} Echo calls answered, by every backend` },
      );
      const hole = backends[0] as SibylProcess;
      // Echo calls the black hole ends cancelled: before it appears, hedged-away losers only.
      const holeCancelled0 = await cancelledEcho(hole);
      const tHole = Date.now();
      const tHolePerf = performance.now();
      await controlBackend(hole, { pause: true });
      // The router learns: the black hole's breaker opens.
      await waitFor(() => holeOpened(router, hole, tHole), {
        timeoutMs: 30_000,
        what: "the black hole's breaker to open",
      });
      // Attempts the router sent it before the ejection are still held there (the backend counts a call
      // it holds once it ends): let every call that started before the ejection end (each attempt ends
      // with its call, at the latest at the pool's timeout), and a second's worth of calls that started
      // after it be answered. Then a steady window of attempts: what share of them still reach it.
      const tOpened = performance.now();
      await waitFor(
        () =>
          echo.pendingBefore(tOpened) === 0 &&
          streams.pendingBefore(tOpened) === 0 &&
          echo.answered(tOpened) >= ECHO_RPS,
        {
          timeoutMs: 30_000,
          what: `every call begun before the ejection to end, and ${ECHO_RPS} Echo calls begun after it answered`,
        },
      );
      const before = await received(backends);
      const window0 = performance.now();
      let after = before;
      await waitFor(
        async () => {
          after = await received(backends);
          return sum(after) - sum(before) >= WINDOW_ATTEMPTS;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `${WINDOW_ATTEMPTS} attempts after the ejection` },
      );
      const window1 = performance.now();
      await Promise.all([echo.stop(), streams.stop()]);
      // Each Echo call it took since it appeared ended cancelled (the router cancels the attempts of
      // calls that ended): when a hedge answered first, or at the pool's timeout (the call then failed).
      const holeEcho = (await cancelledEcho(hole)) - holeCancelled0;

      const e = summarize(echo.outcomes.filter((o) => o.atMs >= tHolePerf));
      const eSteady = summarize(echo.outcomes.filter((o) => o.atMs >= window0 && o.atMs < window1));
      const s = summarize(streams.outcomes.filter((o) => o.atMs >= tHolePerf));
      const holeShare = (after[0]! - before[0]!) / Math.max(1, sum(after) - sum(before));
      const routerText = await scrape(router.info.metrics as string);
      const hedges = metricSum(routerText, 'sibyl_router_hedges_total');

      r.figure(
        'pool',
        `4 backends (5 ms, σ 0.2), RoundRobin, hedging after the predicted p90 (budget 50%), timeout ${TIMEOUT_MS} ms, breaker threshold ${THRESHOLD}`,
      );
      r.figure(
        'load',
        `Echo ${ECHO_RPS}/s (deadline ${ECHO_DEADLINE_MS} ms, hedged) + ClientStream ${STREAM_RPS}/s (no deadline of its own; the pool's timeout ${TIMEOUT_MS} ms; not hedged)`,
      );
      r.figure(
        'Echo after the black hole appeared',
        `${e.calls} calls (${pct(e.successRate)} OK): ${formatCodes(e.codes)}; p50 ${ms(e.p50Ms)}, p99 ${ms(e.p99Ms)}, max ${ms(e.maxMs)}`,
      );
      r.figure(
        'Echo once it was ejected',
        `${eSteady.calls} calls; p50 ${ms(eSteady.p50Ms)}, p99 ${ms(eSteady.p99Ms)}`,
      );
      r.figure(
        'ClientStream after the black hole appeared',
        `${s.calls} calls: ${formatCodes(s.codes)}; p99 ${ms(s.p99Ms)}, max ${ms(s.maxMs)}`,
      );
      r.figure('hedges sent', hedges);
      r.figure(
        'breakers opened on the healthy backends',
        router.logs('breaker Open').filter((l) => l.endpoint !== hole.info.listening).length,
      );
      r.figure('Echo calls the black hole took (each held until cancelled)', holeEcho);
      const opened = holeOpened(router, hole, tHole);
      r.figure(
        'its breaker',
        opened
          ? `opened ${(opened.time as number) - tHole} ms after the black hole appeared (${opened.failures} failures)`
          : 'stayed closed',
      );
      r.figure(
        'attempts reaching the black hole once ejected',
        `${pct(holeShare, 1)} of the pool's (fair share 25%)`,
      );

      const failedEcho = echo.outcomes.filter((o) => o.atMs >= tHolePerf && o.code !== 0);
      const longestFailed = Math.max(0, ...failedEcho.map((o) => o.latencyMs));
      r.check(
        'hedged Echo calls that failed (hedge budget spent) ended at their deadline, not later',
        `≤ the pool's timeout ${TIMEOUT_MS} ms + ${SLACK_MS} ms`,
        failedEcho.length ? `${failedEcho.length} failed, longest ${ms(longestFailed)}` : 'none failed',
        longestFailed <= TIMEOUT_MS + SLACK_MS,
      );
      const rescued = holeEcho - failedEcho.length;
      r.check(
        'hedges rescue the Echo calls the black hole takes',
        '≥ 75% of them answered by a hedge (unhedged, none is; hedges come out of a 50% budget, which slow calls on a loaded machine draw on too)',
        `${rescued} of ${holeEcho} rescued; ${pct(e.successRate)} of all ${e.calls} Echo calls OK`,
        holeEcho > 0 && rescued >= 0.75 * holeEcho,
      );
      r.check(
        'unhedged calls sent to the black hole end at their deadline',
        `longest ≤ deadline ${TIMEOUT_MS} ms + ${SLACK_MS} ms; DEADLINE_EXCEEDED`,
        `${ms(s.maxMs)}; ${formatCodes(s.codes)}`,
        s.maxMs <= TIMEOUT_MS + SLACK_MS && s.calls - s.ok === (s.codes.DEADLINE_EXCEEDED ?? 0),
      );
      r.check(
        'black hole ejected',
        `its breaker opens, on ≤ failureThreshold (${THRESHOLD}) failures`,
        opened ? `Open after ${Number(opened.failures)} failures` : 'still closed',
        opened !== undefined && Number(opened.failures) <= THRESHOLD,
      );
      r.check('picks avoid it once ejected', '< 1% of attempts', pct(holeShare, 1), holeShare < 0.01);
      expect(router.alive).toBe(true);
    } finally {
      echo.close();
      streams.close();
    }
  });
});

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Echo calls a backend ended as cancelled (code 1), so far. */
const cancelledEcho = async (b: SibylProcess) =>
  metricSum(await scrape(b.info.metrics as string), 'sibyl_backend_requests_total', {
    method: 'Echo',
    code: '1',
  });

/** The router's first "breaker Open" line for the black hole since `since` (epoch ms), once there is one. */
const holeOpened = (router: SibylProcess, hole: SibylProcess, since: number) =>
  router.logs('breaker Open').find((l) => l.endpoint === hole.info.listening && (l.time ?? 0) >= since);

/**
 * Calls each backend has taken so far: answered or cancelled, plus those holding or waiting for a slot
 * (a call held by the pause counts once it ends).
 */
async function received(backends: SibylProcess[]): Promise<number[]> {
  return Promise.all(
    backends.map(async (b) => {
      const t = await scrape(b.info.metrics as string);
      return (
        metricSum(t, 'sibyl_backend_requests_total') +
        metricSum(t, 'sibyl_backend_inflight') +
        metricSum(t, 'sibyl_backend_queued')
      );
    }),
  );
}
