import { resolvePoolSpec } from '../../../src/api/resolve.js';
import { OrcaSource, grpcOrcaDialer, type OrcaLoad } from '../../../src/telemetry/orca-oob.js';
import type { Backend } from '../../../src/tools/backend/server.js';
import { quiet, startBackends } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

/**
 * Out-of-band ORCA against real `sibyl backend`s on loopback: one serves OpenRcaService (--orca), one
 * does not. Endpoints are named bN.localhost:PORT, as the operator sees loopback backends.
 */

let backends: Backend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.stop(0)));
  backends = [];
});

const settings = (orca = true) =>
  resolvePoolSpec({ telemetry: { interval: '10s', orcaInterval: '200ms', orca } }).telemetry;

function source() {
  const loads: { pool: string; address: string; load: OrcaLoad; at: number }[] = [];
  const real = grpcOrcaDialer();
  const opened: string[] = [];
  const released: string[] = [];
  const src = new OrcaSource({
    onLoad: (pool, address, load) => loads.push({ pool, address, load, at: Date.now() }),
    log: quiet(),
    dialer: {
      open: (target, intervalMs) => (opened.push(target), real.open(target, intervalMs)),
      release: (target) => (released.push(target), real.release(target)),
      close: () => real.close(),
    },
    unimplementedRetryMs: 60_000,
  });
  return { src, loads, opened, released, stop: () => src.stop() };
}

it('streams reports every interval from a backend that serves them, and asks one that does not only once', async () => {
  const [orca] = await startBackends(1, { orca: true });
  const [plain] = await startBackends(1, {}, 'p');
  backends = [orca!, plain!];
  const { src, loads, opened, released, stop } = source();
  try {
    const a = `b0.localhost:${orca!.port}`;
    const b = `p0.localhost:${plain!.port}`;
    src.track(
      'ns/p',
      [
        { address: a, namespace: 'ns' },
        { address: b, namespace: 'ns' },
      ],
      settings(),
    );
    await waitFor(() => loads.length >= 4, { what: 'four ORCA reports', timeoutMs: 10_000 });
    const orcaStreams = async () => (await orca!.metrics.orcaStreams.get()).values[0]?.value;
    expect(await orcaStreams()).toBe(1);
    expect(new Set(loads.map((l) => l.address))).toEqual(new Set([a]));
    for (const l of loads) {
      expect(l.pool).toBe('ns/p');
      expect(l.load.cpu).toBeGreaterThanOrEqual(0);
      expect(l.load.cpu).toBeLessThanOrEqual(1);
      expect(l.load.memory).toBeGreaterThan(0);
    }
    // reports follow the interval asked for (200 ms), not the backend's 30 s default
    const gaps = loads.slice(1).map((l, i) => l.at - (loads[i] as { at: number }).at);
    expect(Math.max(...gaps)).toBeLessThan(2000);
    // the plain backend answered UNIMPLEMENTED once and is left alone
    expect(opened.filter((t) => t === `127.0.0.1:${plain!.port}`)).toHaveLength(1);
    expect(src.streams()).toBe(1);
    expect(src.figures().size).toBe(0);

    // orca off for the pool: the stream ends and no report follows
    src.track('ns/p', [{ address: a, namespace: 'ns' }], settings(false));
    expect(src.streams()).toBe(0);
    expect(released.sort()).toEqual([`127.0.0.1:${orca!.port}`, `127.0.0.1:${plain!.port}`].sort());
    // The stream really ended: the backend saw it go (so it writes no more reports), where a stream
    // only forgotten by the source would stay open there and keep reporting.
    await waitFor(async () => (await orcaStreams()) === 0, {
      what: 'the backend to see its ORCA stream end',
    });
  } finally {
    stop();
  }
});

it('reopens a stream after the backend restarts', async () => {
  const [orca] = await startBackends(1, { orca: true });
  backends = [orca!];
  const { src, loads, stop } = source();
  try {
    const port = orca!.port;
    const a = `b0.localhost:${port}`;
    src.track('ns/p', [{ address: a, namespace: 'ns' }], settings());
    await waitFor(() => loads.length >= 2, { what: 'ORCA reports', timeoutMs: 10_000 });
    orca!.kill();
    backends = [];
    await waitFor(() => src.streams() === 0, { what: 'the stream to end with the backend' });
    const [again] = await startBackends(1, { orca: true, listen: `127.0.0.1:${port}` });
    backends = [again!];
    const n = loads.length;
    await waitFor(() => loads.length > n + 1, {
      what: 'reports from the restarted backend',
      timeoutMs: 15_000,
    });
  } finally {
    stop();
  }
});
