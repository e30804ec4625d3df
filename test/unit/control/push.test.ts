import { PushScheduler } from '../../../src/control/push-scheduler.js';
import { RoutingState } from '../../../src/control/routing-state.js';
import type { WirePool } from '../../../src/control/messages.js';
import { ManualTimers } from '../../../src/util/timers.js';

const ep = (address: string, extra: object = {}) => ({
  address,
  pod: '',
  ready: true,
  forceOpen: false,
  figuresAgeMs: 0,
  ...extra,
});
const pool = (eps: ReturnType<typeof ep>[], policy = 'PeakEwma'): WirePool => ({
  name: 'ns/p',
  specJson: '{}',
  endpoints: eps,
  policy,
});

describe('RoutingState', () => {
  it('versions only real changes and classifies their urgency', () => {
    const s = new RoutingState(100);
    expect(s.update('ns/p', pool([ep('a:1'), ep('b:1')]))).toMatchObject({ urgent: true, version: 101 });
    expect(s.update('ns/p', pool([ep('a:1'), ep('b:1')]))).toBeUndefined();
    expect(s.update('ns/p', pool([ep('a:1', { weight: 0.5 }), ep('b:1')]))).toMatchObject({ urgent: false });
    expect(s.update('ns/p', pool([ep('a:1', { weight: 0.5 })]))).toMatchObject({ urgent: true }); // removal
    expect(s.update('ns/p', pool([ep('a:1', { weight: 0.5, forceOpen: true })]))).toMatchObject({
      urgent: true,
    });
    expect(s.update('ns/p', pool([ep('a:1', { weight: 0.5, forceOpen: true })], 'RoundRobin'))).toMatchObject(
      { urgent: true },
    );
    expect(s.update('ns/p', undefined)).toMatchObject({ urgent: true });
  });

  it('builds deltas from a version, filtered by namespace', () => {
    const s = new RoutingState(0);
    s.update('a/p', pool([ep('x:1')]));
    s.update('b/q', pool([ep('y:1')]));
    const v = s.version;
    s.update('a/p', pool([ep('x:1'), ep('z:1')]));
    s.update('b/q', undefined);
    const onlyA = (n: string) => n.startsWith('a/');
    expect(s.delta(v, onlyA, undefined)).toMatchObject({
      baseVersion: v,
      removed: [],
      upserts: [{ name: 'ns/p' }],
    });
    expect(s.delta(v, () => true, undefined).removed).toEqual(['b/q']);
    expect(s.snapshot(onlyA, 5000).pools).toHaveLength(1);
  });
});

describe('PushScheduler', () => {
  it('pushes urgent changes at once and coalesces routine ones to one per interval', () => {
    const t = new ManualTimers();
    let pushes = 0;
    const p = new PushScheduler(1000, t, t, () => pushes++);
    p.notify(false);
    expect(pushes).toBe(1); // the first routine change finds no recent push
    for (let i = 0; i < 50; i++) {
      t.advance(10);
      p.notify(false);
    }
    expect(pushes).toBe(1);
    t.advance(500);
    expect(pushes).toBe(2); // one coalesced push at lastPush + interval
    p.notify(true);
    expect(pushes).toBe(3); // urgent: no waiting
    p.notify(false);
    t.advance(999);
    expect(pushes).toBe(3);
    t.advance(1);
    expect(pushes).toBe(4);
  });
});
