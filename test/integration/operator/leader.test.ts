import { createNamespace } from '../../support/kube.js';
import { createPool, createService, getPool, putSlices } from '../../support/objects.js';
import { startOperator } from '../../support/operator.js';
import { followHandover, readLease } from '../../support/lease.js';
import { waitFor } from '../../support/wait.js';
import type { Operator } from '../../../src/operator/operator.js';

const LEASE_MS = 3000;

it('one operator leads; when it dies the standby takes the lease once it expired, never both at once', async () => {
  const ns = await createNamespace('leader');
  await createService(ns, 'svc');
  await putSlices(ns, 'svc', [{ port: 50201 }]);
  await createPool(ns, 'p', { service: { name: 'svc' }, match: { services: ['x.Y'] } });
  const le = (identity: string) => ({
    leaderElection: {
      namespace: ns,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: 2000,
      retryPeriodMs: 250,
    },
  });
  const a = await startOperator(ns, le('a'));
  const b = await startOperator(ns, le('b'));
  const ops: Operator[] = [a, b];
  const dead = new Set<Operator>();
  let overlaps = 0;
  let concurrentReconciles = 0;
  let samples = 0;
  const watch = setInterval(() => {
    samples++;
    const live = ops.filter((o) => !dead.has(o));
    if (live.filter((o) => o.isLeader).length > 1) overlaps++;
    if (live.filter((o) => o.reconciling > 0).length > 1) concurrentReconciles++;
  }, 20);
  try {
    const first = await waitFor(() => ops.find((o) => o.isLeader), { what: 'a leader' });
    await waitFor(async () => (await getPool(ns, 'p')).status?.endpointsSummary === '1/1', {
      what: 'the leader to reconcile',
    });
    const standby = first === a ? b : a;
    // A round the standby starts now meets the lease held: wait for one to finish, then look.
    const rounds = standby.electionRounds;
    await waitFor(() => standby.electionRounds >= rounds + 2, { what: 'the standby to try for the lease' });
    expect(standby.isLeader).toBe(false);

    // Crash the leader: it keeps the lease until it expires.
    dead.add(first);
    const t0 = Date.now();
    await first.stop({ release: false });
    // The standby takes the lease only once it expired: a whole lease duration after the last renewal
    // the crashed leader wrote (both stamped on this host's clock), whatever the machine's load.
    const { lastRenewMs, next } = await followHandover(ns, first === a ? 'a' : 'b', {
      timeoutMs: LEASE_MS * 3,
    });
    expect(next.holder).toBe(first === a ? 'b' : 'a');
    expect(lastRenewMs).toBeGreaterThan(0);
    expect((next.acquireMs as number) - lastRenewMs).toBeGreaterThan(LEASE_MS);
    await waitFor(() => standby.isLeader, { intervalMs: 20, what: 'the standby to lead' });
    console.log(
      `leader takeover after a crash: ${Date.now() - t0} ms; lease taken ${(next.acquireMs as number) - lastRenewMs} ms after the last renewal (lease ${LEASE_MS} ms)`,
    );

    // The new leader reconciles: a change made now shows in status.
    await putSlices(ns, 'svc', [{ port: 50202 }]);
    await waitFor(async () => (await getPool(ns, 'p')).status?.endpointsSummary === '2/2', {
      what: 'the new leader to reconcile',
    });
    // The watch has looked at both again since.
    const seen = samples;
    await waitFor(() => samples >= seen + 10, { what: 'ten more samples of the watch', intervalMs: 20 });
    expect(overlaps).toBe(0);
    expect(concurrentReconciles).toBe(0);
  } finally {
    clearInterval(watch);
    for (const o of ops) if (!dead.has(o)) await o.stop();
  }
});

it('a leader that stops cleanly hands over at once', async () => {
  const ns = await createNamespace('handover');
  const le = (identity: string) => ({
    leaderElection: {
      namespace: ns,
      identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 200,
    },
  });
  const a = await startOperator(ns, le('a'));
  await waitFor(() => a.isLeader, { what: 'a to lead' });
  const b = await startOperator(ns, le('b'));
  // b campaigns from its start, while a holds the lease: two rounds of it, both lost.
  await waitFor(() => b.electionRounds >= 2, { what: 'b to try for the lease twice' });
  expect(b.isLeader).toBe(false);
  // A release hands over at once: b takes the lease long before it would have expired (15 s after a
  // renewal a wrote before stopping), which it could not have without the release.
  const held = await readLease(ns);
  expect(held.holder).toBe('a');
  await a.stop();
  await waitFor(() => b.isLeader, { timeoutMs: 15_000, intervalMs: 20, what: 'b to lead after release' });
  const taken = await readLease(ns);
  expect(taken.holder).toBe('b');
  expect(taken.acquireMs as number).toBeLessThan((held.renewMs as number) + 15_000);
  console.log(
    `handover on release: b took the lease ${(taken.acquireMs as number) - (held.renewMs as number)} ms after a's renewal`,
  );
  await b.stop();
});
