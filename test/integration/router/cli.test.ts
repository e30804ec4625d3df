import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { demoClientConstructor } from '../../../src/tools/backend/proto.js';
import { demoClient, echo, type DemoClient } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// `sibyl backend` and `sibyl router` as processes, from the build (make test builds first).
const MAIN = join(process.cwd(), 'dist/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'sibyl-cli-'));
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(join(process.cwd(), 'dist/cli/router.js'))) {
    throw new Error('dist/ lacks the router: run `npm run build` (make test does) before these tests');
  }
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function sibyl(args: string[]): {
  child: ChildProcess;
  out: Promise<Record<string, string>>;
  stderr: () => string;
  exit: Promise<number>;
} {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const out = new Promise<Record<string, string>>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{"listening"'));
      if (line) resolve(JSON.parse(line) as Record<string, string>);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
  });
  out.catch(() => undefined);
  const exit = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return { child, out, stderr: () => stderr, exit };
}

function routes(file: string, address: string, extra = ''): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    `pools:\n  - name: demo\n    match: {services: [sibyl.demo.v1.Demo]}\n    endpoints: [{address: "${address}"}]\n    balancing: {policy: RoundRobin}\n${extra}`,
  );
  return path;
}

it('refuses a bad routes file with exit status 2, the field path and the reason', async () => {
  const file = routes(
    'bad.yaml',
    '127.0.0.1:1',
    '    retries: {maxAttempts: 0}\n    timeout: {default: never}\n',
  );
  const r = sibyl(['router', '--config', file, '--listen', '127.0.0.1:0', '--metrics-addr', '']);
  expect(await r.exit).toBe(2);
  expect(r.stderr()).toContain('pools[0].retries.maxAttempts');
  expect(r.stderr()).toContain('pools[0].timeout.default: must be a duration');
});

it('refuses an --advertise address Envoy could not dial, with exit status 2', async () => {
  for (const bad of [':8080', 'router-0.shop:8080', '10.0.0.7:0']) {
    const r = sibyl(['router', '--control', '127.0.0.1:1', '--control-insecure', '--advertise', bad]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toContain(`--advertise "${bad}" must be an IP address and a port Envoy can dial`);
  }
});

it('backend and router run as processes: calls, /control, /metrics, reload, and a graceful drain on SIGTERM', async () => {
  const backend = sibyl([
    'backend',
    '--listen',
    '127.0.0.1:0',
    '--metrics-addr',
    '127.0.0.1:0',
    '--name',
    'cli-b',
    '--latency-ms',
    '1',
    '--orca',
  ]);
  const b = await backend.out;
  expect(b).toMatchObject({ listening: expect.stringMatching(/^127\.0\.0\.1:\d+$/), name: 'cli-b' });

  const file = routes('good.yaml', b.listening as string);
  const router = sibyl([
    'router',
    '--config',
    file,
    '--listen',
    '127.0.0.1:0',
    '--metrics-addr',
    '127.0.0.1:0',
    '--drain-grace',
    '10s',
  ]);
  const r = await router.out;
  const client = demoClient(r.listening as string);
  try {
    const first = await echo(client, { message: 'via the router process' });
    expect(first.response).toMatchObject({ server: 'cli-b', message: 'via the router process' });

    const ctl = await fetch(`http://${b.metrics}/control`, {
      method: 'POST',
      body: JSON.stringify({ errorRate: 1, errorCode: 5 }),
    });
    expect(await ctl.json()).toMatchObject({ errorRate: 1, errorCode: 5 });
    expect((await echo(client, {})).status.code).toBe(grpc.status.NOT_FOUND);
    await fetch(`http://${b.metrics}/control`, { method: 'POST', body: JSON.stringify({ errorRate: 0 }) });
    const bad = await fetch(`http://${b.metrics}/control`, { method: 'POST', body: '{"latencyMs": -1}' });
    expect(bad.status).toBe(400);

    const backendMetrics = await (await fetch(`http://${b.metrics}/metrics`)).text();
    expect(backendMetrics).toContain('process_cpu_seconds_total');
    expect(backendMetrics).toContain('process_resident_memory_bytes');
    expect(backendMetrics).toMatch(/sibyl_backend_requests_total\{method="Echo",code="0"\} [1-9]/);
    const routerMetrics = await (await fetch(`http://${r.metrics}/metrics`)).text();
    expect(routerMetrics).toMatch(/sibyl_router_requests_total\{pool="demo",code="5"\} 1/);

    // A reload with a bad file keeps the table in force.
    writeFileSync(file, 'pools: []\n');
    router.child.kill('SIGHUP');
    await waitFor(() => router.stderr().includes('reload refused'), { what: 'the reload to be refused' });
    expect((await echo(client, {})).status.code).toBe(grpc.status.OK);

    // SIGTERM: the call in flight finishes, then the process exits 0.
    const slow = echo(client, { latencyMs: 1000 });
    await waitFor(
      async () =>
        /^sibyl_backend_inflight 1$/m.test(await (await fetch(`http://${b.metrics}/metrics`)).text()),
      { what: 'the call to reach the backend', intervalMs: 20 },
    );
    router.child.kill('SIGTERM');
    expect((await slow).status.code).toBe(grpc.status.OK);
    expect(await router.exit).toBe(0);
  } finally {
    client.close();
    backend.child.kill('SIGTERM');
  }
  expect(await backend.exit).toBe(0);
});

it('serves TLS with --tls-cert and --tls-key', async () => {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  const backend = sibyl(['backend', '--listen', '127.0.0.1:0', '--name', 'tls-b']);
  const b = await backend.out;
  const router = sibyl([
    'router',
    '--config',
    routes('tls.yaml', b.listening as string),
    '--listen',
    '127.0.0.1:0',
    '--metrics-addr',
    '',
    '--tls-cert',
    cert,
    '--tls-key',
    key,
  ]);
  const r = await router.out;
  const Demo = demoClientConstructor();
  const client = new Demo(
    r.listening as string,
    grpc.credentials.createSsl(readFileSync(cert)),
  ) as unknown as DemoClient;
  try {
    const res = await echo(client, { message: 'secret' });
    expect(res.response).toMatchObject({ server: 'tls-b', message: 'secret' });
  } finally {
    client.close();
    router.child.kill('SIGTERM');
    backend.child.kill('SIGTERM');
  }
  expect(await router.exit).toBe(0);
});
