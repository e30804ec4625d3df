import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PhaseResult } from '../../../src/tools/demo/traffic.js';
import type { TryDeadlineCounts } from '../../../src/tools/demo/try-deadlines.js';

/**
 * `sibyl demo` as `make demo` runs it (the built CLI, its own local control plane, real backends, the
 * operator, a real Envoy, the proxyless grpc-js client in the demo's process, routers and a Redis),
 * with short phases. It must finish cleanly, carry calls on every data plane, and show the data
 * planes and the per-method deadlines in `kubectl describe bp`.
 */

const MAIN = join(process.cwd(), 'dist/cli/main.js');
const state = mkdtempSync(join(process.env.SIBYL_TEST_WORK ?? tmpdir(), 'demo-'));
let stdout = '';
let code: number | null = null;
let results: {
  phases: PhaseResult[];
  envoyUpstreamRequests: number;
  tryDeadlines: TryDeadlineCounts;
};

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (make test does)`);
  const child = spawn(
    process.execPath,
    [MAIN, 'demo', '--state-dir', state, '--phase-seconds', '5', '--rps', '100'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = createWriteStream(join(state, '..', `${state.split('/').pop()}.out`));
  child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), log.write(d)));
  child.stderr.pipe(log);
  code = await new Promise((resolve) => child.once('exit', resolve));
  log.end();
  if (code === 0) results = JSON.parse(readFileSync(join(state, 'results.json'), 'utf8')) as typeof results;
}, 600_000);

const phase = (name: string) => results.phases.find((p) => p.name === name) as PhaseResult;
const share = (p: PhaseResult, b: string) => (p.byBackend[b] ?? 0) / Math.max(1, p.ok);

it('runs to the end and prints a row per phase: Envoy, the proxyless client under each policy, the routers without and with the cache', () => {
  expect({ code, tail: code === 0 ? '' : stdout.slice(-3000) }).toEqual({ code: 0, tail: '' });
  expect(results.phases.map((p) => p.name)).toEqual([
    'envoy',
    'grpc-js RoundRobin',
    'grpc-js PeakEwma',
    'grpc-js Predictive',
    'routers Predictive',
    'routers Predictive+cache',
  ]);
  for (const p of results.phases)
    expect(stdout).toMatch(new RegExp(`^${p.name.replace('+', '\\+')}\\s+${p.calls}\\s`, 'm'));
});

it('carried the Envoy phase through Envoy, spread over the backends of the pool', () => {
  const envoy = phase('envoy');
  expect(envoy.calls).toBeGreaterThan(0);
  expect(envoy.ok / envoy.calls).toBeGreaterThan(0.9);
  // Envoy's own count of calls to the pool's backends covers at least what the phase saw answered.
  expect(results.envoyUpstreamRequests).toBeGreaterThanOrEqual(envoy.ok);
  expect(Object.keys(envoy.byBackend).filter((b) => b !== 'b6').length).toBeGreaterThanOrEqual(4);
});

it('carried the proxyless phases over xds:///shop.demo; in-process Predictive kept calls off the slow backend', () => {
  const rr = phase('grpc-js RoundRobin');
  const predictive = phase('grpc-js Predictive');
  for (const p of [rr, phase('grpc-js PeakEwma'), predictive]) {
    expect(p.calls).toBeGreaterThan(0);
    expect(p.ok / p.calls).toBeGreaterThan(0.9);
  }
  // Only sibyl's in-process policy reads the pool's policy from the cluster's TypedStruct: the stock
  // fallback (ring_hash by sibyl's weights) would give slow b5 a few percent in both phases. So an even
  // split under RoundRobin (b5 about a sixth) and little for b5 under Predictive, on one channel, show
  // the in-process policy ran and followed `kubectl patch`.
  expect(share(rr, 'b5')).toBeGreaterThan(0.1);
  expect(share(predictive, 'b5')).toBeLessThan(0.1);
});

it('kubectl describe bp shows both xDS clients, Envoy and grpc-js, with what they ACKed and the weights pushed', () => {
  const describe = stdout.slice(stdout.indexOf('$ kubectl describe bp shop'));
  const planes = describe.slice(describe.indexOf('Data Planes:'), describe.indexOf('Decision:'));
  expect(planes).toMatch(/Connected:\s+2/);
  expect(planes).toMatch(/Kind:\s+envoy\n\s+Node:\s+demo-envoy/);
  expect(planes).toMatch(/Kind:\s+grpc-js\n\s+Node:\s+demo-grpc-js/);
  // Each client ACKed an EDS version (whether it is the newest depends on the moment: weights move).
  expect(planes.match(/EDS:\s+[1-9]\d*/g)?.length).toBe(2);
  expect(describe.match(/Xds Weight:\s+\d+/g)?.length).toBe(6);
  for (const p of ['routers Predictive', 'routers Predictive+cache']) expect(phase(p).ok).toBeGreaterThan(0);
});

it("kubectl describe bp shows Echo's per-try deadline in force (spec.timeout.predicted), and the demo says what the deadlines did", () => {
  const describe = stdout.slice(stdout.indexOf('$ kubectl describe bp shop'));
  // The routers' per-method reports (or the model) give the operator Echo's p99 as the demo ends.
  const row =
    /Deadlines:\n\s+Method:\s+\/sibyl\.demo\.v1\.Demo\/Echo\n\s+Per Try Timeout Ms:\s+(\d+)\n\s+predictedP99Ms:\s+[\d.]+\n\s+Source:\s+(Model|Observed)\n/.exec(
      describe,
    );
  expect(row?.[2]).toMatch(/^(Model|Observed)$/);
  // within the pool's floor and ceiling (src/tools/demo/objects.ts)
  expect(Number(row?.[1])).toBeGreaterThanOrEqual(100);
  expect(Number(row?.[1])).toBeLessThanOrEqual(250);
  const t = results.tryDeadlines;
  expect(stdout).toContain(
    `Envoy cut ${t.envoyTimedOut} tries at their route's per_try_timeout; the routers cut ${t.routersRetried + t.routersFailed} `,
  );
});
