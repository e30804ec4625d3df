import { Store } from '../../../src/kube/store.js';
import { WorkQueue } from '../../../src/kube/workqueue.js';
import { seededRandom } from '../../../src/util/clock.js';
import { deferred, waitFor } from '../../support/wait.js';

describe('WorkQueue', () => {
  it('coalesces duplicates, never runs a key twice at once, and reruns a key added while running', async () => {
    const runs: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const firstRun = deferred();
    const release = deferred();
    const q = new WorkQueue(
      async (k) => {
        runs.push(k);
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (k === 'a' && runs.length === 1) {
          firstRun.resolve();
          await release.promise;
        }
        running--;
      },
      { concurrency: 1, random: seededRandom(1) },
      () => {},
    );
    q.add('a');
    await firstRun.promise;
    q.add('a'); // while running: once more afterwards
    q.add('a');
    q.add('b');
    q.add('b');
    release.resolve();
    await q.idle();
    expect(runs).toEqual(['a', 'b', 'a']);
    expect(maxRunning).toBe(1);
    expect(q.depth).toBe(0);
  });

  it('runs event keys before routine ones; a routine key added as an event moves up, never runs twice', async () => {
    const runs: string[] = [];
    const firstRun = deferred();
    const release = deferred();
    const q = new WorkQueue(
      async (k) => {
        runs.push(k);
        if (runs.length === 1) {
          firstRun.resolve();
          await release.promise;
        }
      },
      { concurrency: 1, random: seededRandom(1) },
      () => {},
    );
    q.add('busy');
    await firstRun.promise;
    for (const k of ['r1', 'r2', 'r3']) q.add(k); // routine: a resync
    q.add('e1', 'event');
    q.add('r3', 'event'); // was routine: moves to the event lane, once
    q.add('e1'); // already an event: stays one
    q.add('busy', 'event'); // running: once more afterwards, as an event
    expect(q.depth).toBe(4);
    release.resolve();
    await q.idle();
    expect(runs).toEqual(['busy', 'e1', 'r3', 'busy', 'r1', 'r2']);
  });

  it('retries failures with backoff and honours requeueAfter', async () => {
    let n = 0;
    const errors: number[] = [];
    const q = new WorkQueue(
      async () => {
        n++;
        if (n < 3) throw new Error('boom');
        if (n === 3) return { requeueAfterMs: 20 };
      },
      { concurrency: 2, random: seededRandom(1), baseBackoffMs: 5, maxBackoffMs: 20 },
      (_k, _e, ms) => errors.push(ms),
    );
    q.add('k');
    // Two backoffs (5 and ~10 ms) and the 20 ms requeue run on the queue's own timers.
    await waitFor(() => n >= 4, { what: 'the fourth run', intervalMs: 5 });
    expect(n).toBe(4);
    expect(errors).toHaveLength(2);
    expect(errors[1] as number).toBeGreaterThan((errors[0] as number) * 1.2);
    q.stop();
  });
});

describe('Store indexes', () => {
  it('finds objects by index and keeps the index right through updates and deletes', () => {
    const s = new Store<{ metadata: { name: string; namespace: string; labels?: Record<string, string> } }>({
      svc: (o) => (o.metadata.labels?.svc ? [`${o.metadata.namespace}/${o.metadata.labels.svc}`] : []),
    });
    s.put({ metadata: { name: 'x', namespace: 'n', labels: { svc: 'a' } } });
    s.put({ metadata: { name: 'y', namespace: 'n', labels: { svc: 'a' } } });
    expect(
      s
        .byIndex('svc', 'n/a')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['x', 'y']);
    s.put({ metadata: { name: 'x', namespace: 'n', labels: { svc: 'b' } } });
    expect(s.byIndex('svc', 'n/a').map((o) => o.metadata.name)).toEqual(['y']);
    s.delete('n/y');
    expect(s.byIndex('svc', 'n/a')).toEqual([]);
    expect(s.byIndex('svc', 'n/b')).toHaveLength(1);
  });
});
