import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RouterAuthenticator, kubeTokenReviewer } from '../../../src/control/auth.js';
import type { Operator } from '../../../src/operator/operator.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { systemClock } from '../../../src/util/clock.js';
import { renderBootstrap } from '../../../src/xds/bootstrap.js';
import { TYPE } from '../../../src/xds/types.js';
import { AdsStream } from '../../support/ads-stream.js';
import { demoClient, echo, startBackends } from '../../support/grpc.js';
import { createNamespace, kubeConfig } from '../../support/kube.js';
import { startOperator } from '../../support/operator.js';
import { logDir } from '../../support/procs.js';
import { makeServingCert } from '../../support/tls.js';
import { routerAccountToken } from '../../support/token.js';
import { waitFor } from '../../support/wait.js';
import { EnvoyProcess, GoXdsClient, poolInput, startAds, type Ads } from '../../support/xds.js';

/**
 * ADS authentication against a real kube-apiserver: clients present a ServiceAccount token, reviewed
 * with TokenReview; the account must be on the allowed list. grpc-go sends it from a token file (gRFC
 * A97 call credentials, over TLS), Envoy through its file_based_metadata call credentials.
 */

let ns: string;
let ads: Ads;
let backends: Backend[];
const tls = makeServingCert();
const caFile = join(tls.dir, 'ca.crt');
const tokens: Record<string, string> = {};
const closers: (() => Promise<void>)[] = [];

const goNode = { id: 'raw', cluster: 'c', user_agent_name: 'gRPC Go' };
const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false);

function tokenFile(name: string): string {
  const f = join(logDir, `${ns}-${name}.token`);
  writeFileSync(f, tokens[name] as string);
  return f;
}

/** A raw ADS stream over TLS with this bearer token (or none); resolves with its status or first response. */
async function attempt(address: string, token?: string): Promise<number | 'served'> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const s = new AdsStream(address, md, grpc.credentials.createSsl(tls.ca));
  s.send(TYPE.listener, ['demo.x'], undefined, undefined, goNode);
  const r = await waitFor(() => s.error?.code ?? (s.got.length ? ('served' as const) : undefined), {
    what: 'a refusal or a response',
  });
  s.call.end();
  return r;
}

function goClient(name: string, address: string, token: string, target: string): GoXdsClient {
  const bootstrap = renderBootstrap('grpc', {
    server: address,
    caFile,
    tokenFile: tokenFile(token),
    nodeId: name,
  });
  const c = new GoXdsClient(
    name,
    `xds:///${target}`,
    bootstrap,
    { GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS: 'true' },
    ['--timeout', '2s'],
  );
  closers.push(() => c.close());
  return c;
}

beforeAll(async () => {
  ns = await createNamespace('xds-auth');
  tokens.envoy = await routerAccountToken(ns, 'envoy');
  tokens.stranger = await routerAccountToken(ns, 'stranger');
  backends = await startBackends(2);
  const auth = new RouterAuthenticator(kubeTokenReviewer(kubeConfig()), [`${ns}/envoy`], systemClock);
  ads = await startAds({ auth }, creds);
  ads.xds.setPool(`${ns}/demo`, poolInput(`${ns}/demo`, backends));
});

afterAll(async () => {
  for (const c of closers) await c();
  await ads.stop();
  await Promise.all(backends.map((b) => b.stop()));
});

it('refuses a client without a token, with a token the API server rejects, and one not on the allowed list', async () => {
  expect(await attempt(`localhost:${ads.port}`)).toBe(grpc.status.UNAUTHENTICATED);
  expect(await attempt(`localhost:${ads.port}`, 'not-a-token')).toBe(grpc.status.UNAUTHENTICATED);
  expect(await attempt(`localhost:${ads.port}`, tokens.stranger)).toBe(grpc.status.PERMISSION_DENIED);
  expect(await attempt(`localhost:${ads.port}`, tokens.envoy)).toBe('served');
  await waitFor(() => ads.xds.clients().length === 0, { what: 'the served stream to end' });
});

it('grpc-go over TLS with an allowed token file routes; with an unlisted one it gets nothing', async () => {
  const good = goClient('go-allowed', ads.address, 'envoy', `demo.${ns}`);
  const r = await good.batch(40);
  expect(r.errors).toEqual({});
  expect(Object.keys(r.backends).sort()).toEqual(['b0', 'b1']);
  expect(ads.xds.clients().map((c) => [c.node, c.account])).toEqual([
    ['go-allowed', `system:serviceaccount:${ns}:envoy`],
  ]);
  const bad = goClient('go-stranger', ads.address, 'stranger', `demo.${ns}`);
  const refused = await bad.batch(5, { concurrency: 1 });
  expect(refused.backends).toEqual({});
  expect(Object.keys(refused.errors)).toEqual([String(grpc.status.UNAVAILABLE)]);
  console.log(`grpc-go with an unlisted account: ${refused.lastError}`);
  expect(ads.xds.clients().map((c) => c.node)).toEqual(['go-allowed']);
});

it('Envoy over TLS with its token file gets its configuration and routes', async () => {
  const envoy = await EnvoyProcess.create('envoy-auth', 302, {
    server: ads.address,
    caFile,
    tokenFile: tokenFile('envoy'),
    nodeId: 'envoy-auth',
  });
  closers.push(() => envoy.kill());
  envoy.start();
  await envoy.ready();
  expect(ads.xds.clients().find((c) => c.node === 'envoy-auth')?.account).toBe(
    `system:serviceaccount:${ns}:envoy`,
  );
  const client = demoClient(envoy.listen);
  const r = await echo(client, {}, { deadlineMs: 5000 });
  client.close();
  expect(r.error).toBeUndefined();
  expect(['b0', 'b1']).toContain(r.headers?.get('x-sibyl-backend')[0]);
});

it("the operator serves ADS on its control API's port, TLS and token authentication", async () => {
  const op: Operator = await startOperator(ns, {
    control: {
      addr: '127.0.0.1:0',
      tls: { cert: tls.cert, key: tls.key },
      allowedRouters: [`${ns}/envoy`],
    },
  });
  closers.push(() => op.stop());
  const address = `localhost:${op.controlPort}`;
  expect(await attempt(address)).toBe(grpc.status.UNAUTHENTICATED);
  expect(await attempt(address, tokens.stranger)).toBe(grpc.status.PERMISSION_DENIED);
  const c = goClient('go-operator', `127.0.0.1:${op.controlPort}`, 'envoy', `nothing.${ns}`);
  await c.batch(1, { concurrency: 1 });
  await waitFor(() => op.control?.xds.clients().find((x) => x.node === 'go-operator')?.types.LDS?.acked, {
    what: 'grpc-go to ACK the operator’s LDS response',
  });
});
