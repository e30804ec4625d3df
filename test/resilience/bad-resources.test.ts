import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNamespace, kubectl, kubectlOk } from '../support/kube.js';
import { Load, formatCodes, summarize } from '../support/load.js';
import { createPool, createService, getPool, putSlices, type PoolView } from '../support/objects.js';
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
import { runCase } from './report.js';
import { routerAccountToken } from '../support/token.js';

/**
 * A good BackendPool carries traffic (operator and router processes, three backends) while bad
 * resources go in through the real kubectl: new objects and edits of the good pool that the API
 * server must refuse with a message naming the field, and objects it accepts that the operator must
 * mark (Invalid, or not Ready) with a message. The good pool keeps routing every call, and its status
 * is not disturbed (same conditions, same transition times, same generation).
 */
const RPS = 60;
const svc = { service: { name: 'shop' }, match: { services: ['other.Svc'] } };
const pool = (name: string, spec: object) => ({
  apiVersion: 'sibyl.dev/v1alpha1',
  kind: 'BackendPool',
  metadata: { name },
  spec,
});
const tier = (name: string, spec: object) => ({
  apiVersion: 'sibyl.dev/v1alpha1',
  kind: 'CacheTier',
  metadata: { name },
  spec,
});

/** [what is wrong, kubectl arguments (after -n NS), stdin, the field the refusal must name] */
type Refused = [string, string[], string | undefined, RegExp];
const refused = (): Refused[] => {
  const apply = (o: object): [string[], string] => [
    ['apply', '--validate=strict', '-f', '-'],
    JSON.stringify(o),
  ];
  const patchGood = (spec: object): [string[], undefined] => [
    ['patch', 'bp', 'good', '--type', 'merge', '-p', JSON.stringify({ spec })],
    undefined,
  ];
  return [
    [
      'unknown policy',
      ...apply(pool('b1', { ...svc, balancing: { policy: 'Fastest' } })),
      /spec\.balancing\.policy/,
    ],
    [
      'limits out of order',
      ...apply(pool('b2', { ...svc, concurrency: { minLimit: 50, initialLimit: 10 } })),
      /spec\.concurrency/,
    ],
    [
      'hedging without idempotent methods',
      ...apply(pool('b3', { ...svc, hedging: { enabled: true } })),
      /hedging/,
    ],
    [
      'timeout not a duration',
      ...apply(pool('b4', { ...svc, timeout: { default: 'soon' } })),
      /spec\.timeout\.default/,
    ],
    [
      'a per-try ceiling below its floor',
      ...apply(pool('b4c', { ...svc, timeout: { predicted: { floor: '50ms', ceiling: '20ms' } } })),
      /spec\.timeout\.predicted: Invalid value.*ceiling must not be below floor/,
    ],
    [
      'zero failure threshold',
      ...apply(pool('b5', { ...svc, circuitBreaker: { failureThreshold: 0 } })),
      /spec\.circuitBreaker\.failureThreshold/,
    ],
    [
      'both service and endpoints',
      ...apply(pool('b6', { ...svc, endpoints: [{ address: '10.0.0.1:80' }] })),
      /spec: Invalid value.*exactly one of service/,
    ],
    [
      'address without a port',
      ...apply(pool('b7', { match: svc.match, endpoints: [{ address: 'nohost' }] })),
      /spec\.endpoints\[0\]\.address/,
    ],
    [
      'a typo in a field name',
      ...apply(pool('b8', { ...svc, balancin: { policy: 'RoundRobin' } })),
      /unknown field "spec\.balancin"/,
    ],
    [
      'retries over the bound',
      ...apply(pool('b9', { ...svc, retries: { maxAttempts: 11 } })),
      /spec\.retries\.maxAttempts/,
    ],
    ['a name with capitals', ...apply(pool('Bad_Name', svc)), /metadata\.name/],
    [
      'cache size not a quantity',
      ...apply(tier('t1', { pools: ['good'], methods: [{ method: '/a.B/C' }], l1: { maxBytes: 'lots' } })),
      /spec\.l1\.maxBytes/,
    ],
    [
      'edit of the good pool: unknown policy',
      ...patchGood({ balancing: { policy: 'Random' } }),
      /spec\.balancing\.policy/,
    ],
    [
      'edit of the good pool: exploration out of range',
      ...patchGood({ balancing: { exploration: 0.9 } }),
      /spec\.balancing\.exploration/,
    ],
    ['edit of the good pool: empty match', ...patchGood({ match: { services: [] } }), /spec\.match/],
  ];
};

afterAll(killAll);

it('bad resources through kubectl are refused or marked, and the good pool next to them is undisturbed', async () => {
  await runCase('bad-resources', async (r) => {
    const ns = await createNamespace('badres');
    const token = await routerAccountToken(ns);
    const tokenFile = join(logDir, `${ns}.token`);
    writeFileSync(tokenFile, token);
    const tls = makeServingCert();
    const backends = await Promise.all(
      [0, 1, 2].map((i) => startBackendProcess(`badres-b${i}`, ['--latency-ms', '3', '--jitter', '0.2'])),
    );
    const port = (b: SibylProcess) => Number((b.info.listening as string).split(':').pop());
    await createService(ns, 'shop');
    await putSlices(
      ns,
      'shop',
      backends.map((b) => ({ port: port(b), pod: b.name })),
    );
    await createPool(ns, 'good', {
      service: { name: 'shop', port: 'grpc' },
      match: { services: ['sibyl.demo.v1.Demo'] },
      balancing: { policy: 'RoundRobin' },
    });
    const op = await startSibyl(
      'badres-operator',
      [
        'operator',
        '--kubeconfig',
        process.env.KUBECONFIG as string,
        '--namespace',
        ns,
        '--leader-elect',
        'false',
        ...operatorControlArgs(ns, tls.dir),
      ],
      { json: false },
    );
    const started = await op.waitForLog('operator started', 60_000);
    const router = await startSubscribedRouter('badres-router', {
      control: `127.0.0.1:${started.controlPort}`,
      tlsDir: tls.dir,
      tokenFile,
      ns,
      id: 'r1',
    });
    const before = await waitFor(
      async () => {
        const p = await getPool(ns, 'good');
        const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
        return p.status?.endpointsSummary === '3/3' &&
          ready?.status === 'True' &&
          (p.status as { routers?: number }).routers === 1
          ? p
          : undefined;
      },
      { timeoutMs: 30_000, what: 'the good pool to be Ready with the router subscribed' },
    );
    await waitFor(async () => (await fetch(`http://${router.info.metrics}/readyz`)).status === 200, {
      what: 'the router to hold a table',
    });

    // A generous deadline: the check is that bad resources disturb no call, and a call that a loaded
    // machine starved for 2 s (one of 899 under two busy loops) is not a disturbance they caused.
    const load = new Load({ targets: [router.info.listening as string], rps: RPS, deadlineMs: 10_000 });
    try {
      load.start();
      await waitFor(() => load.answered() >= RPS, { timeoutMs: 60_000, what: `${RPS} calls answered` });
      const results: Array<{ what: string; ok: boolean; message: string }> = [];
      for (const [what, args, input, field] of refused()) {
        const res = await kubectl(['-n', ns, ...args], input);
        const lines = res.stderr.trim().split('\n');
        const message = (lines.find((l) => field.test(l)) ?? lines.at(-1) ?? '').replace(/^\s*\*\s*/, '');
        results.push({ what, ok: res.code !== 0 && field.test(res.stderr), message });
      }
      // Accepted by the API server; only the operator can see what is wrong with them.
      await kubectlOk(
        ['-n', ns, 'apply', '-f', '-'],
        JSON.stringify(pool('no-tier', { ...svc, cacheTierRef: { name: 'missing' } })),
      );
      await kubectlOk(
        ['-n', ns, 'apply', '-f', '-'],
        JSON.stringify(
          pool('no-service', { service: { name: 'absent' }, match: { services: ['third.Svc'] } }),
        ),
      );
      await kubectlOk(
        ['-n', ns, 'apply', '-f', '-'],
        JSON.stringify(tier('no-pool', { pools: ['ghost'], methods: [{ method: '/a.B/C' }] })),
      );
      const marked = await waitFor(
        async () => {
          const cond = async (kind: string, name: string, type: string) => {
            const o = JSON.parse(await kubectlOk(['-n', ns, 'get', kind, name, '-o', 'json'])) as PoolView;
            return o.status?.conditions?.find((c) => c.type === type);
          };
          const got = [
            ['BackendPool no-tier', await cond('bp', 'no-tier', 'Invalid'), 'True'],
            ['BackendPool no-service', await cond('bp', 'no-service', 'Ready'), 'False'],
            ['CacheTier no-pool', await cond('ct', 'no-pool', 'Invalid'), 'True'],
          ] as const;
          return got.every(([, c, want]) => c?.status === want && c.message) ? got : undefined;
        },
        { timeoutMs: 20_000, what: 'the operator to mark the accepted bad objects' },
      );
      // The operator has been at the good pool since: it wrote its status (fresh figures from the
      // router's reports) twice more, after the bad objects were marked.
      let rv = (await getPool(ns, 'good')).metadata.resourceVersion;
      for (let i = 0; i < 2; i++) {
        const seen = rv;
        await waitFor(async () => (rv = (await getPool(ns, 'good')).metadata.resourceVersion) !== seen, {
          timeoutMs: 30_000,
          what: "the operator to write the good pool's status again",
        });
      }
      await load.stop();
      const after = await getPool(ns, 'good');
      const all = summarize(load.outcomes);
      const conds = (p: PoolView) =>
        JSON.stringify(
          (p.status?.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.lastTransitionTime]).sort(),
        );

      r.figure(
        'setup',
        `a good pool (3 backends, RoundRobin) with an operator and a router process; ${RPS} calls/s through it while the bad resources went in`,
      );
      for (const x of results) r.figure(`refused: ${x.what}`, x.message);
      for (const [what, c] of marked)
        r.figure(`marked: ${what}`, `${c?.type}=${c?.status} ${c?.reason}: ${c?.message}`);
      r.figure('calls to the good pool', `${all.calls}: ${formatCodes(all.codes)}`);

      const bad = results.filter((x) => !x.ok);
      r.check(
        'refused by the API server with a message naming the field',
        `all ${results.length}`,
        bad.length
          ? `${results.length - bad.length}; not as expected: ${bad.map((x) => x.what).join(', ')}`
          : `all ${results.length}`,
        bad.length === 0,
      );
      r.check(
        'accepted but wrong: marked by the operator with a message',
        'all 3',
        `${marked.length}`,
        marked.length === 3,
      );
      r.check('calls to the good pool failed', '0', all.failed, all.failed === 0);
      const same =
        conds(after) === conds(before) &&
        after.metadata.generation === before.metadata.generation &&
        after.status?.observedGeneration === before.status?.observedGeneration &&
        after.status?.endpointsSummary === before.status?.endpointsSummary;
      r.check(
        "the good pool's status undisturbed",
        'same conditions and transition times, generation, endpoints',
        same
          ? `same (generation ${after.metadata.generation}, ${after.status?.endpointsSummary} ready)`
          : `before ${conds(before)}, after ${conds(after)}`,
        same,
      );
      expect(op.alive && router.alive).toBe(true);
    } finally {
      load.close();
    }
  });
});
