import { pino } from 'pino';
import type { PoolObject } from '../../../src/operator/context.js';
import { RefitSchedule } from '../../../src/operator/refit-schedule.js';
import { Store } from '../../../src/kube/store.js';
import type { RefitResult } from '../../../src/model/refit.js';
import { ManualClock } from '../../../src/util/clock.js';

const pool = (name: string, balancing?: object): PoolObject =>
  ({
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'BackendPool',
    metadata: { name, namespace: 'ns', uid: name },
    spec: { endpoints: [], match: { services: ['a.B'] }, ...(balancing ? { balancing } : {}) },
  }) as unknown as PoolObject;

function setup(
  pools: PoolObject[],
  result: RefitResult | undefined = { promoted: true, reason: 'better' },
  recalibrated?: string,
) {
  const store = new Store<PoolObject>();
  for (const p of pools) store.put(p);
  const clock = new ManualClock(0);
  const asked: number[] = [];
  const events: string[] = [];
  const enqueued: string[] = [];
  let measured = 0;
  let recalibrations = 0;
  const schedule = new RefitSchedule({
    model: {
      refit: async (minSamples) => {
        asked.push(minSamples);
        return result;
      },
      recalibrate: () => {
        recalibrations++;
        return recalibrated;
      },
      measureLiveCoverage: () => measured++,
    },
    pools: store,
    events: {
      record: async (obj, type, reason) => {
        events.push(`${obj.name} ${type} ${reason}`);
      },
    },
    enqueuePool: (k) => enqueued.push(k),
    clock,
    log: pino({ level: 'silent' }),
  });
  return {
    schedule,
    clock,
    asked,
    events,
    enqueued,
    measured: () => measured,
    recalibrations: () => recalibrations,
  };
}

test('refits at the shortest retrain interval among Predictive pools, with the fewest samples any asks for', async () => {
  const { schedule, clock, asked, events, enqueued } = setup([
    pool('a'), // Predictive by default: 5m, 1000 samples
    pool('b', { policy: 'Predictive', model: { retrainInterval: '2m', minSamples: 300 } }),
    pool('c', { policy: 'RoundRobin', model: { retrainInterval: '10s', minSamples: 1 } }),
  ]);
  clock.set(119_999);
  await schedule.tick();
  expect(asked).toEqual([]);
  clock.set(120_000);
  await schedule.tick();
  expect(asked).toEqual([300]);
  expect(events.sort()).toEqual(['a Normal ModelPromoted', 'b Normal ModelPromoted']);
  // the first tick measured live coverage and asked both pools to show it; the refit asked again
  expect(enqueued.sort()).toEqual(['ns/a', 'ns/a', 'ns/b', 'ns/b']);
  // The next refit waits a whole interval from this one.
  clock.advance(119_999);
  await schedule.tick();
  expect(asked).toEqual([300]);
  clock.advance(1);
  await schedule.tick();
  expect(asked).toEqual([300, 300]);
});

test('does nothing without a Predictive pool, and says ModelRejected when the candidate loses', async () => {
  const none = setup([pool('c', { policy: 'PeakEwma' })]);
  none.clock.set(3_600_000);
  await none.schedule.tick();
  expect(none.asked).toEqual([]);
  const rejected = setup([pool('a')], { promoted: false, reason: 'worse on the holdout' });
  rejected.clock.set(300_000);
  await rejected.schedule.tick();
  expect(rejected.asked).toEqual([1000]);
  expect(rejected.events).toEqual(['a Warning ModelRejected']);
});

test('measures live coverage every 30 s, and recalibrates only after a refit that promoted nothing', async () => {
  const t = setup([pool('a')], { promoted: false, reason: 'worse' }, 'quantiles recalibrated');
  await t.schedule.tick();
  expect(t.measured()).toBe(1);
  t.clock.advance(29_999);
  await t.schedule.tick();
  expect(t.measured()).toBe(1);
  t.clock.advance(1);
  await t.schedule.tick();
  expect(t.measured()).toBe(2);
  expect(t.recalibrations()).toBe(0);
  t.clock.set(300_000);
  await t.schedule.tick();
  expect(t.recalibrations()).toBe(1);
  expect(t.events).toEqual(['a Warning ModelRejected', 'a Normal ModelRecalibrated']);
  const promoted = setup([pool('a')]);
  promoted.clock.set(300_000);
  await promoted.schedule.tick();
  expect(promoted.recalibrations()).toBe(0);
});
