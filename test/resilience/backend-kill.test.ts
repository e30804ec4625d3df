import { Load, formatCodes, summarize } from '../support/load.js';
import {
  killAll,
  startBackendProcess,
  startRouterProcess,
  writeRoutes,
  type LogLine,
  type SibylProcess,
} from '../support/procs.js';
import { eventually, waitFor } from '../support/wait.js';
import { ms, pct, runCase } from './report.js';

/**
 * Two of eight `sibyl backend` processes are SIGKILLed while a `sibyl router` process carries a steady
 * load to them, then started again on the same ports. The router must hide the loss (retries on
 * another endpoint; the breakers eject the dead two within failureThreshold failures) and take them
 * back once they answer again (half-open probes close the breakers).
 */
const RPS = 300;
const THRESHOLD = 5;
const RECOVERY_MS = 1500;
/** A phase (steady, then with two backends dead) lasts this many seconds' worth of calls answered. */
const PHASE_S = 3;
/** Calls each restarted backend must serve once its breaker closed. */
const SERVED_AGAIN = 20;

afterAll(killAll);

it('two of eight backends killed under load: ≥ 99.9% success, breakers open, then close after the restart', async () => {
  await runCase('backend-kill', async (r) => {
    const backends = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        startBackendProcess(`kill-b${i}`, ['--latency-ms', '5', '--jitter', '0.2', '--concurrency', '32']),
      ),
    );
    const pool = {
      name: 'demo',
      match: { services: ['sibyl.demo.v1.Demo'] },
      endpoints: backends.map((b) => ({ address: b.info.listening })),
      balancing: { policy: 'PeakEwma' },
      idempotentMethods: ['/sibyl.demo.v1.Demo/Echo'],
      circuitBreaker: {
        failureThreshold: THRESHOLD,
        recoveryTimeout: `${RECOVERY_MS}ms`,
        halfOpenMaxCalls: 2,
        maxEjectionPercent: 50,
      },
      retries: { maxAttempts: 3, retryOn: ['unavailable'], budgetPercent: 20 },
    };
    const router = await startRouterProcess('kill-router', ['--config', writeRoutes('kill', [pool])]);
    const load = new Load({ targets: [router.info.listening as string], rps: RPS, deadlineMs: 2000 }).start();
    const phaseCalls = PHASE_S * RPS; // calls answered per phase (PHASE_S seconds of the open-loop load)
    try {
      // Steady before the kill: a phase of calls answered, every backend among them.
      await waitFor(
        () => load.answered() >= phaseCalls && backends.every((b) => load.answered(0, b.name) > 0),
        { timeoutMs: 60_000, what: `${phaseCalls} calls answered, by every backend` },
      );
      const victims = backends.slice(2, 4);
      const addresses = victims.map((v) => v.info.listening as string);
      const tKill = Date.now();
      const tKillPerf = performance.now();
      await Promise.all(victims.map((v) => v.kill()));
      const opened = await waitFor(
        () => {
          const open = addresses.map((a) => transitions(router, a, 'Open')[0]);
          return open.every(Boolean) ? (open as LogLine[]) : undefined;
        },
        { timeoutMs: 10_000, what: 'both victims’ breakers to open' },
      );
      // The router carries a phase of calls with the two dead (their breakers open, then probing).
      const tOpenedPerf = performance.now();
      await waitFor(() => load.answered(tOpenedPerf) >= phaseCalls, {
        timeoutMs: 60_000,
        what: `${phaseCalls} calls answered with the victims dead`,
      });
      const tRestart = Date.now();
      const tRestartPerf = performance.now();
      const restarted = await Promise.all(
        victims.map((v, i) =>
          startBackendProcess(
            v.name,
            ['--latency-ms', '5', '--jitter', '0.2', '--concurrency', '32'],
            addresses[i],
          ),
        ),
      );
      const closed = await waitFor(
        () => {
          const c = addresses.map((a) =>
            transitions(router, a, 'Closed').find((l) => (l.time ?? 0) > tRestart),
          );
          return c.every(Boolean) ? (c as LogLine[]) : undefined;
        },
        { timeoutMs: 15_000, what: 'both victims’ breakers to close again' },
      );
      // Back in: each restarted backend serves calls that started once its breaker had closed.
      const tClosedPerf = performance.now();
      const servedAgain = await eventually(
        () => restarted.every((b) => load.answered(tClosedPerf, b.name) >= SERVED_AGAIN),
        { timeoutMs: 15_000, what: `${SERVED_AGAIN} calls served by each restarted backend` },
      );
      await load.stop();
      const all = summarize(load.outcomes);
      const victimNames = new Set(victims.map((v) => v.name));
      const back = load.outcomes.filter(
        (o) => o.atMs > tRestartPerf && victimNames.has(o.server ?? ''),
      ).length;

      const starts = load.outcomes.map((o) => o.atMs);
      const spanS = (Math.max(...starts) - Math.min(...starts)) / 1000;
      r.figure(
        'load',
        `${RPS} calls/s open loop (${(all.calls / spanS).toFixed(0)}/s sent) over ${spanS.toFixed(0)} s, deadline 2 s`,
      );
      r.figure(
        'pool',
        `8 backends (5 ms, σ 0.2), PeakEwma, retries 3 on UNAVAILABLE (budget 20%), breaker threshold ${THRESHOLD}, recovery ${RECOVERY_MS} ms`,
      );
      r.figure('calls', `${all.calls}: ${formatCodes(all.codes)}`);
      r.figure('latency', `p50 ${ms(all.p50Ms)}, p99 ${ms(all.p99Ms)}, max ${ms(all.maxMs)}`);
      const phase = (from: number, to: number) => {
        const s = summarize(load.outcomes.filter((o) => o.atMs >= from && o.atMs < to));
        return `p50 ${ms(s.p50Ms)}, p99 ${ms(s.p99Ms)} (${s.calls} calls, ${s.failed} failed)`;
      };
      r.figure(
        'latency before the kill (after 1 s of warm-up)',
        phase(Math.min(...starts) + 1000, tKillPerf),
      );
      r.figure('latency in the 3 s after the kill', phase(tKillPerf, tKillPerf + 3000));
      r.figure('latency from the restart to the end', phase(tRestartPerf, performance.now()));
      r.figure(
        'breaker opened after kill',
        opened
          .map((l, i) => `${victims[i]?.name} ${(l.time as number) - tKill} ms (${l.failures} failures)`)
          .join(', '),
      );
      r.figure(
        'breaker closed after restart',
        closed.map((l, i) => `${victims[i]?.name} ${(l.time as number) - tRestart} ms`).join(', '),
      );
      r.figure('calls served by the restarted backends after their restart', back);
      r.check('client success', '≥ 99.9%', pct(all.successRate), all.successRate >= 0.999);
      const maxFailures = Math.max(...opened.map((l) => Number(l.failures)));
      r.check(
        'failures seen before each breaker opened',
        `≤ failureThreshold (${THRESHOLD})`,
        opened.map((l) => l.failures).join(', '),
        maxFailures <= THRESHOLD,
      );
      r.check(
        'breakers closed after the backends returned',
        'both, within 15 s',
        closed.map((l) => ms((l.time as number) - tRestart)).join(', '),
        closed.length === 2,
      );
      r.check(
        'restarted backends take calls again',
        `both serve ≥ ${SERVED_AGAIN} calls once their breakers closed`,
        restarted.map((b) => `${b.name} ${load.answered(tClosedPerf, b.name)}`).join(', '),
        servedAgain,
      );
      expect(router.alive).toBe(true);
    } finally {
      load.close();
    }
  });
});

/** The router's "breaker Open|Closed" log lines for one endpoint, oldest first. */
function transitions(router: SibylProcess, endpoint: string, to: string): LogLine[] {
  return router.logs(`breaker ${to}`).filter((l) => l.endpoint === endpoint);
}
