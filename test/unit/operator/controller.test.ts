import { pino } from 'pino';
import { Controller, KeyChannel } from '../../../src/operator/controller.js';
import { OperatorMetrics } from '../../../src/operator/metrics.js';
import { TierGate } from '../../../src/operator/tier-gate.js';
import { seededRandom } from '../../../src/util/clock.js';
import { ManualTimers } from '../../../src/util/timers.js';
import { waitFor } from '../../support/wait.js';

const options = (metrics = new OperatorMetrics()) => ({
  kind: 'BackendPool',
  concurrency: 2,
  random: seededRandom(1),
  metrics,
  log: pino({ level: 'silent' }),
});

describe('Controller', () => {
  it('reconciles the keys its channels send only while it runs, and counts reconciles in flight', async () => {
    const channel = new KeyChannel();
    const seen: string[] = [];
    let release = () => {};
    const blocked = new Promise<void>((r) => (release = r));
    const c = new Controller(
      {
        reconcile: async (k) => {
          seen.push(k);
          if (k === 'ns/slow') await blocked;
        },
      },
      [channel],
      options(),
    );
    channel.send('ns/early'); // not leading yet: dropped, leading starts with a resync
    expect(c.running).toBe(false);
    c.start();
    expect(c.running).toBe(true);
    channel.send('ns/slow');
    await waitFor(() => c.reconciling === 1, { what: 'the slow reconcile to start' });
    channel.send('ns/a');
    await waitFor(() => seen.includes('ns/a') && c.reconciling === 1, { what: 'ns/a beside the slow one' });
    release();
    await waitFor(() => c.reconciling === 0, { what: 'the slow reconcile to end' });
    c.stop();
    channel.send('ns/late');
    expect(c.running).toBe(false);
    expect(seen).toEqual(['ns/slow', 'ns/a']);
  });

  it('counts a failed reconcile in sibyl_reconcile_errors_total and retries it', async () => {
    const metrics = new OperatorMetrics();
    let calls = 0;
    const c = new Controller(
      {
        reconcile: async () => {
          if (++calls === 1) throw new Error('conflict');
        },
      },
      [],
      options(metrics),
    );
    c.start();
    c.enqueue('ns/p');
    await waitFor(() => calls === 2, { what: 'the retry' });
    c.stop();
    const errors = await metrics.reconcileErrors.get();
    expect(errors.values).toEqual([expect.objectContaining({ labels: { kind: 'BackendPool' }, value: 1 })]);
  });
});

describe('KeyChannel', () => {
  it('sends each key to every controller bound to it', () => {
    const ch = new KeyChannel();
    const a: string[] = [];
    const b: string[] = [];
    ch.bind((k) => a.push(k));
    ch.bind((k) => b.push(k));
    ch.send('ns/x');
    expect([a, b]).toEqual([['ns/x'], ['ns/x']]);
  });
});

describe('TierGate', () => {
  const passed = async (g: TierGate) => {
    let open = false;
    void g.wait().then(() => (open = true));
    await Promise.resolve();
    await Promise.resolve();
    return open;
  };
  it('opens once every tier was reconciled', async () => {
    const timers = new ManualTimers();
    const g = new TierGate(timers, 10_000);
    g.close(['ns/a', 'ns/b']);
    g.reconciled('ns/a');
    expect(await passed(g)).toBe(false);
    g.reconciled('ns/a');
    expect(await passed(g)).toBe(false);
    g.reconciled('ns/b');
    expect(await passed(g)).toBe(true);
  });
  it('opens after the timeout when a tier never finishes, and at once with no tier', async () => {
    const timers = new ManualTimers();
    const g = new TierGate(timers, 10_000);
    g.close(['ns/a']);
    timers.advance(9_999);
    expect(await passed(g)).toBe(false);
    timers.advance(1);
    expect(await passed(g)).toBe(true);
    g.close([]);
    expect(await passed(g)).toBe(true);
  });
  it('opens when told (leadership ended)', async () => {
    const g = new TierGate(new ManualTimers(), 10_000);
    g.close(['ns/a']);
    g.open();
    expect(await passed(g)).toBe(true);
  });
});
