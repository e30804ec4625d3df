import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNamespace } from '../support/kube.js';
import { Load, formatCodes, summarize } from '../support/load.js';
import { createPool, createService, getPool, putSlices } from '../support/objects.js';
import {
  killAll,
  logDir,
  startBackendProcess,
  operatorControlArgs,
  startSibyl,
  startSubscribedRouter,
  type SibylProcess,
} from '../support/procs.js';
import { startServiceProxy, type ServiceProxy } from '../support/service-proxy.js';
import { makeServingCert } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { followHandover, readLease } from '../support/lease.js';
import { ms, runCase } from './report.js';
import { routerAccountToken } from '../support/token.js';

/**
 * Two `sibyl operator` processes with leader election on a Lease, behind a stand-in for their
 * Service (a TCP forwarder to whichever answers /readyz: the leader), and two `sibyl router`
 * processes subscribed through it over TLS with a ServiceAccount token, carrying steady traffic to four
 * `sibyl backend`s. The leader is SIGKILLed: the standby must take its Lease once it expired (a lease
 * duration after the dead leader's last renewal, not before) and lead; the routers must keep routing
 * on their last table (no call fails), reconnect to the new leader, and apply what it sends (a backend
 * marked not ready afterwards stops getting calls).
 */
const LEASE_MS = 3000;
const RPS = 100;

let proxy: ServiceProxy | undefined;
afterAll(async () => {
  await proxy?.close();
  await killAll();
});

it('the leading operator killed: no call fails, the standby leads once the lease expired, routers resync', async () => {
  await runCase('operator-kill', async (r) => {
    const ns = await createNamespace('opkill');
    const token = await routerAccountToken(ns);
    const tokenFile = join(logDir, `${ns}.token`);
    writeFileSync(tokenFile, token);
    const tls = makeServingCert();

    const backends = await Promise.all(
      [0, 1, 2, 3].map((i) => startBackendProcess(`opkill-b${i}`, ['--latency-ms', '3', '--jitter', '0.2'])),
    );
    const port = (b: SibylProcess) => Number((b.info.listening as string).split(':').pop());
    await createService(ns, 'shop');
    await putSlices(
      ns,
      'shop',
      backends.map((b) => ({ port: port(b), pod: b.name })),
    );
    await createPool(ns, 'shop', {
      service: { name: 'shop', port: 'grpc' },
      match: { services: ['sibyl.demo.v1.Demo'] },
      // RoundRobin: every backend has its share, so a backend the routers stop using shows it.
      balancing: { policy: 'RoundRobin' },
      retries: { maxAttempts: 3, retryOn: ['unavailable'], budgetPercent: 20 },
      telemetry: { interval: '1s' },
    });

    const operator = (name: string) =>
      startSibyl(
        name,
        [
          'operator',
          '--kubeconfig',
          process.env.KUBECONFIG as string,
          '--namespace',
          ns,
          '--lease-namespace',
          ns,
          '--lease-duration',
          `${LEASE_MS}ms`,
          '--renew-deadline',
          '2s',
          '--retry-period',
          '250ms',
          ...operatorControlArgs(ns, tls.dir),
        ],
        { json: false },
      );
    const ops = await Promise.all([operator('opkill-op-a'), operator('opkill-op-b')]);
    const started = await Promise.all(ops.map((o) => o.waitForLog('operator started', 60_000)));
    const readyUrl = (i: number) => `http://127.0.0.1:${started[i]?.metricsPort}/readyz`;
    const isReady = async (i: number) => {
      try {
        return (await fetch(readyUrl(i), { signal: AbortSignal.timeout(500) })).status === 200;
      } catch {
        return false;
      }
    };
    proxy = await startServiceProxy(
      ops.map((_, i) => ({ address: `127.0.0.1:${started[i]?.controlPort}`, readyUrl: readyUrl(i) })),
      100,
    );
    const leaderIndex = await waitFor(
      async () => {
        const ready = await Promise.all([isReady(0), isReady(1)]);
        return ready.filter(Boolean).length === 1 ? ready.indexOf(true) + 1 : undefined;
      },
      { timeoutMs: 30_000, what: 'one operator to lead' },
    );
    const leader = ops[leaderIndex - 1] as SibylProcess;
    const standbyIndex = leaderIndex === 1 ? 1 : 0;
    const standby = ops[standbyIndex] as SibylProcess;

    const routers = await Promise.all(
      ['r1', 'r2'].map((id) =>
        startSubscribedRouter(`opkill-${id}`, {
          control: proxy?.address as string,
          tlsDir: tls.dir,
          tokenFile,
          ns,
          id: id,
        }),
      ),
    );
    await waitFor(
      async () => ((await getPool(ns, 'shop')).status as { routers?: number } | undefined)?.routers === 2,
      {
        timeoutMs: 30_000,
        what: 'both routers subscribed to the leader',
      },
    );
    await waitFor(
      async () =>
        (
          await Promise.all(
            routers.map(async (x) => (await fetch(`http://${x.info.metrics}/readyz`)).status === 200),
          )
        ).every(Boolean),
      { what: 'both routers to hold a table' },
    );

    const load = new Load({
      targets: routers.map((x) => x.info.listening as string),
      rps: RPS,
      deadlineMs: 2000,
    });
    try {
      load.start();
      await waitFor(() => load.answered() >= 2 * RPS && backends.every((b) => load.answered(0, b.name) > 0), {
        timeoutMs: 60_000,
        what: `${2 * RPS} calls answered, by every backend`,
      });
      const killed = (await readLease(ns)).holder as string;
      const tKill = Date.now();
      await leader.kill();
      // The Lease's own times (both operators stamp them on this host's clock) say when the standby took
      // it: a lease duration after the dead leader's last renewal, however loaded the machine.
      const handover = await followHandover(ns, killed, { timeoutMs: LEASE_MS * 3 });
      await waitFor(() => isReady(standbyIndex), {
        timeoutMs: LEASE_MS * 4,
        intervalMs: 25,
        what: 'the standby to lead (its /readyz)',
      });
      const takeoverMs = Date.now() - tKill;
      const takenAfterMs = (handover.next.acquireMs as number) - handover.lastRenewMs;
      const subscribed = await waitFor(
        () => {
          const ids = new Set(
            standby
              .logs('router subscribed')
              .filter((l) => (l.time ?? 0) >= tKill)
              .map((l) => l.router),
          );
          return ids.size === 2 ? Date.now() - tKill : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 25, what: 'both routers to subscribe to the new leader' },
      );
      // The new leader's tables reach the routers: a backend marked not ready stops getting calls.
      const gone = backends[0] as SibylProcess;
      const tChange = performance.now();
      const tChangeEpoch = Date.now();
      await putSlices(ns, 'shop', [{ port: port(gone), pod: gone.name, ready: false }]);
      // Both routers apply a table without it (their "routing table applied" line: shop with 3
      // endpoints); no call that starts after that may go to it.
      const appliedEpoch = await waitFor(
        () => {
          const at = routers.map(
            (x) =>
              x
                .logs('routing table applied')
                .find(
                  (l) =>
                    (l.time ?? 0) >= tChangeEpoch &&
                    (l.pools as string[] | undefined)?.some((p) => /\/shop\(3\)$/.test(p)),
                )?.time,
          );
          return at.every((t) => t !== undefined) ? Math.max(...(at as number[])) : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 50, what: 'both routers to apply a table without it' },
      );
      const appliedAt = appliedEpoch - (Date.now() - performance.now()); // on performance.now()'s clock
      const status = await waitFor(
        async () => {
          const p = await getPool(ns, 'shop');
          return p.status?.endpointsSummary === '3/4' ? p : undefined;
        },
        { timeoutMs: 15_000, what: 'the new leader to write status' },
      );
      const tStatus = performance.now();
      await waitFor(() => load.answered(tStatus) >= RPS, {
        timeoutMs: 30_000,
        what: `${RPS} more calls answered`,
      });
      await load.stop();
      const all = summarize(load.outcomes);
      // Every call has ended: those to the backend marked not ready, by when they started.
      const toGone = load.outcomes.filter((o) => o.server === gone.name);
      const late = toGone.filter((o) => o.atMs > appliedAt).length;
      const appliedMs = Math.max(...toGone.map((o) => o.atMs)) - tChange;
      const goneBefore = toGone.filter((o) => o.atMs >= tChange - 1000 && o.atMs < tChange).length;
      const applied =
        appliedMs > 0
          ? `its last call started ${ms(appliedMs)} after the change; both routers applied it ${ms(appliedAt - tChange)} after`
          : 'no call went to it after the change';

      r.figure(
        'setup',
        `2 operators (lease ${LEASE_MS} ms, retry 250 ms) behind a readiness-following Service; 2 routers (TLS, ServiceAccount token); 4 backends; ${RPS} calls/s through both routers`,
      );
      r.figure(
        'calls',
        `${all.calls}: ${formatCodes(all.codes)}; p50 ${ms(all.p50Ms)}, p99 ${ms(all.p99Ms)}`,
      );
      r.figure('standby leading (its /readyz 200) after the SIGKILL', ms(takeoverMs));
      r.figure("Lease taken after the killed leader's last renewal", ms(takenAfterMs));
      r.figure('both routers subscribed to the new leader after the SIGKILL', ms(subscribed));
      r.figure(
        'a backend marked not ready afterwards',
        `${goneBefore} calls to it in the second before the EndpointSlice change; ${applied}; status by the new leader: ${status.status?.endpointsSummary} ready, ${(status.status as { routers?: number }).routers} routers`,
      );

      r.check('calls failed because of the kill', '0', all.failed, all.failed === 0);
      r.check(
        'the standby takes the Lease once it expired, and leads',
        `Lease taken > ${LEASE_MS} ms (the lease) after the killed leader's last renewal; /readyz within 3 × lease of the SIGKILL`,
        `taken ${ms(takenAfterMs)} after the last renewal (held by ${handover.next.holder}); leading ${ms(takeoverMs)} after the SIGKILL`,
        handover.lastRenewMs > 0 &&
          handover.next.holder !== killed &&
          takenAfterMs > LEASE_MS &&
          takeoverMs <= 3 * LEASE_MS,
      );
      r.check(
        'routers resync: reconnect to the new leader and apply its tables',
        'both subscribed; a change made afterwards reaches both: no call to the backend once both applied it',
        `subscribed after ${ms(subscribed)}; ${applied}; ${late} calls to it after (it had ${goneBefore} in the second before)`,
        goneBefore > 0 && late === 0,
      );
      expect(routers.every((x) => x.alive)).toBe(true);
    } finally {
      load.close();
    }
  });
});
