import { seededRandom } from '../../../src/util/clock.js';
import {
  DEFAULT_SETTINGS,
  drawFailure,
  serviceTimeMs,
  validatePatch,
} from '../../../src/tools/backend/model.js';
import { Slots } from '../../../src/tools/backend/slots.js';
import { BackendState } from '../../../src/tools/backend/state.js';

// The test backend's behaviour model (src/tools/backend), which the router's integration tests stand on.
describe('backend service-time model', () => {
  it('has mean ≈ base + per-KiB cost, stretched by slowdown', () => {
    const random = seededRandom(7);
    const s = { ...DEFAULT_SETTINGS, latencyMs: 10, perKiBMs: 2, jitter: 0.3, slowdown: 3 };
    let sum = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) sum += serviceTimeMs(s, { payloadBytes: 2048 }, random);
    expect(sum / n).toBeGreaterThan(14 * 3 * 0.97);
    expect(sum / n).toBeLessThan(14 * 3 * 1.03);
  });

  it('is exact without jitter, and a request override replaces the base', () => {
    const s = { ...DEFAULT_SETTINGS, latencyMs: 10, jitter: 0 };
    expect(serviceTimeMs(s, { payloadBytes: 0 }, Math.random)).toBe(10);
    expect(serviceTimeMs(s, { payloadBytes: 0, latencyOverrideMs: 3 }, Math.random)).toBe(3);
  });

  it('fails the configured share of calls with the configured code', () => {
    const random = seededRandom(1);
    const s = { ...DEFAULT_SETTINGS, errorRate: 0.25, errorCode: 8 };
    const codes = Array.from({ length: 10_000 }, () => drawFailure(s, random));
    const failed = codes.filter((c) => c === 8).length;
    expect(failed).toBeGreaterThan(2300);
    expect(failed).toBeLessThan(2700);
    expect(codes.every((c) => c === 0 || c === 8)).toBe(true);
  });

  it('validates control patches field by field', () => {
    expect(validatePatch({ latencyMs: 20, pause: true })).toEqual({ patch: { latencyMs: 20, pause: true } });
    expect(validatePatch({ errorRate: 2, pause: 'yes', what: 1 })).toEqual({
      errors: [
        'errorRate must be a number from 0 to 1',
        'pause must be true or false',
        'unknown setting "what"',
      ],
    });
    expect(validatePatch([])).toEqual({ errors: ['body must be a JSON object'] });
  });
});

describe('backend slots', () => {
  it('queues beyond capacity in FIFO order and lets a cancelled waiter leave', async () => {
    const slots = new Slots(1);
    const r1 = await slots.acquire();
    const order: string[] = [];
    const ac = new AbortController();
    const p2 = slots.acquire().then((r) => (order.push('2'), r));
    const p3 = slots.acquire(ac.signal).catch(() => order.push('3 cancelled'));
    const p4 = slots.acquire().then((r) => (order.push('4'), r));
    expect(slots.queued).toBe(3);
    ac.abort(new Error('gone'));
    await p3;
    r1();
    (await p2)();
    (await p4)();
    expect(order).toEqual(['3 cancelled', '2', '4']);
    expect(slots.busy).toBe(0);
  });

  it('holds calls while paused', async () => {
    const state = new BackendState({ pause: true });
    let ran = false;
    const p = state.whenRunning().then(() => (ran = true));
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(false);
    state.update({ pause: false });
    await p;
    expect(ran).toBe(true);
  });
});
