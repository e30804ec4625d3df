import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateCluster } from '../support/cluster.js';
import { createNamespace, kubectl, kubectlOk } from '../support/kube.js';
import { Load, formatCodes, metricSum, scrape, summarize } from '../support/load.js';
import { createPool, createService, getPool, putSlices } from '../support/objects.js';
import { INFORMERS } from '../support/operator.js';
import {
  killAll,
  logDir,
  startBackendProcess,
  operatorControlArgs,
  startSibyl,
  startSubscribedRouter,
  type SibylProcess,
} from '../support/procs.js';
import { makeServingCert } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { ms, runCase } from './report.js';
import { routerAccountToken } from '../support/token.js';

/**
 * The kube-apiserver is stopped under a running `sibyl operator` process (leader-elected, with a
 * `sibyl router` subscribed and carrying traffic), and started again; the moment it answers, the
 * EndpointSlices and the pool's spec are changed, before the operator's watches have come back. The
 * operator must converge to those changes (status and routing), and no call may fail meanwhile. The
 * file runs a control plane of its own: restarting the shared one would disturb every other test.
 */
const cluster = privateCluster('resilience-restart');
const savedKubeconfig = process.env.KUBECONFIG;
const RPS = 100;

beforeAll(async () => {
  await cluster.run('up');
  process.env.KUBECONFIG = cluster.kubeconfig;
  await kubectlOk(['apply', '-f', 'crds']);
  await kubectlOk(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await waitFor(async () => (await kubectl(['get', 'bp,ct', '-A'])).code === 0, {
    what: 'the CRDs to be served',
  });
}, 120_000);

afterAll(async () => {
  await killAll();
  process.env.KUBECONFIG = savedKubeconfig;
  await cluster.run('down');
});

it('the kube-apiserver restarted: the operator converges to changes made while it was away', async () => {
  await runCase('apiserver-restart', async (r) => {
    const ns = await createNamespace('restart');
    const token = await routerAccountToken(ns);
    const tokenFile = join(logDir, `${ns}.token`);
    writeFileSync(tokenFile, token);
    const tls = makeServingCert();
    const backends = await Promise.all(
      [0, 1, 2].map((i) => startBackendProcess(`restart-b${i}`, ['--latency-ms', '3', '--jitter', '0.2'])),
    );
    const port = (b: SibylProcess) => Number((b.info.listening as string).split(':').pop());
    const [b0, b1, b2] = backends as [SibylProcess, SibylProcess, SibylProcess];
    await createService(ns, 'shop');
    await putSlices(
      ns,
      'shop',
      [b0, b1].map((b) => ({ port: port(b), pod: b.name })),
    );
    await createPool(ns, 'shop', {
      service: { name: 'shop', port: 'grpc' },
      match: { services: ['sibyl.demo.v1.Demo'] },
      balancing: { policy: 'RoundRobin' },
      retries: { maxAttempts: 3, retryOn: ['unavailable'], budgetPercent: 20 },
      telemetry: { interval: '1s' },
    });
    const op = await startSibyl(
      'restart-operator',
      [
        'operator',
        '--kubeconfig',
        cluster.kubeconfig,
        '--namespace',
        ns,
        '--lease-namespace',
        ns,
        // An API server restart takes ~10 s on a busy machine: a renew deadline longer than that keeps
        // the one replica leading through it (with the default 10 s it may step down and re-acquire).
        '--lease-duration',
        '40s',
        '--renew-deadline',
        '30s',
        ...operatorControlArgs(ns, tls.dir),
      ],
      { json: false },
    );
    const started = await op.waitForLog('operator started', 60_000);
    const router = await startSubscribedRouter('restart-router', {
      control: `127.0.0.1:${started.controlPort}`,
      tlsDir: tls.dir,
      tokenFile,
      ns,
      id: 'r1',
    });
    await waitFor(
      async () => {
        const p = await getPool(ns, 'shop');
        return p.status?.endpointsSummary === '2/2' && (p.status as { routers?: number }).routers === 1;
      },
      { timeoutMs: 30_000, what: 'the operator to reconcile and the router to subscribe' },
    );
    await waitFor(async () => (await fetch(`http://${router.info.metrics}/readyz`)).status === 200, {
      what: 'the router to hold a table',
    });

    const load = new Load({ targets: [router.info.listening as string], rps: RPS, deadlineMs: 2000 });
    try {
      load.start();
      await waitFor(() => load.answered() >= RPS && [b0, b1].every((b) => load.answered(0, b.name) > 0), {
        timeoutMs: 60_000,
        what: `${RPS} calls answered, by both backends`,
      });
      const failures = async () => {
        const text = await scrape(`127.0.0.1:${started.metricsPort}`);
        return INFORMERS.map((informer) =>
          metricSum(text, 'sibyl_informer_restarts_total', { informer, reason: 'error' }),
        );
      };
      const failed0 = await failures();
      const tStop = Date.now();
      await cluster.run('stop-apiserver');
      // The operator's watches fail and back off: each of its informers counts a failure.
      await waitFor(async () => (await failures()).every((n, i) => n > (failed0[i] as number)), {
        timeoutMs: 30_000,
        what: "every informer's watch to fail",
      });
      await cluster.run('start-apiserver');
      const downMs = Date.now() - tStop;
      // Changes made the moment the API server is back, before the operator has seen anything.
      const tChange = Date.now();
      const tChangePerf = performance.now();
      await putSlices(ns, 'shop', [
        { port: port(b0), pod: b0.name, ready: false },
        { port: port(b2), pod: b2.name },
      ]);
      await kubectlOk([
        'patch',
        'bp',
        'shop',
        '-n',
        ns,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { balancing: { policy: 'LeastRequest' } } }),
      ]);
      const converged = await waitFor(
        async () => {
          const p = await getPool(ns, 'shop');
          const s = p.status;
          return s?.endpointsSummary === '2/3' &&
            s.observedGeneration === p.metadata.generation &&
            s.policy === 'LeastRequest'
            ? p
            : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'status to show the changes made after the restart' },
      );
      const statusMs = Date.now() - tChange;
      const routed = await waitFor(
        () => {
          const recent = load.outcomes.filter((o) => o.atMs > performance.now() - 1000);
          const servers = new Set(recent.map((o) => o.server));
          return recent.length > 50 && !servers.has(b0.name) && servers.has(b2.name)
            ? performance.now() - tChangePerf
            : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'the router to route by the changes' },
      );
      await load.stop();
      const all = summarize(load.outcomes);
      const restarts = metricSum(
        await scrape(`127.0.0.1:${started.metricsPort}`),
        'sibyl_informer_restarts_total',
      );

      r.figure(
        'setup',
        `a control plane of its own; 1 operator (leader-elected, renew deadline 30 s), 1 router (TLS, token), 3 backends; ${RPS} calls/s`,
      );
      r.figure(
        'kube-apiserver away',
        `${ms(downMs)} (stopped until every informer of the operator had failed, then started until /readyz)`,
      );
      r.figure(
        'changes made once it answered',
        "one backend marked not ready, one added, the pool's policy patched RoundRobin → LeastRequest",
      );
      r.figure(
        'status converged',
        `${ms(statusMs)} after the changes (${converged.status?.endpointsSummary} ready, policy ${converged.status?.policy}, observedGeneration ${converged.status?.observedGeneration})`,
      );
      r.figure('router routing by the changes', `${ms(routed)} after the changes`);
      r.figure('operator informer restarts', restarts);
      r.figure(
        'calls',
        `${all.calls}: ${formatCodes(all.codes)}; p50 ${ms(all.p50Ms)}, p99 ${ms(all.p99Ms)}`,
      );

      r.check(
        'the operator converges to the changes made while it was away',
        'status and routing within 30 s',
        `status ${ms(statusMs)}, routing ${ms(routed)}`,
        true,
      );
      r.check('informers restarted (the watches did break)', '≥ 1', restarts, restarts >= 1);
      r.check('calls failed meanwhile', '0', all.failed, all.failed === 0);
      expect(op.alive && router.alive).toBe(true);
    } finally {
      load.close();
    }
  });
});
