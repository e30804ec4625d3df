import { EventQueue } from '../../../../src/tools/sim/event-queue.js';
import { seededRandom } from '../../../../src/util/clock.js';

describe('EventQueue', () => {
  it('pops in time order, and in insertion order at equal times', () => {
    const q = new EventQueue<string>(16);
    q.push(5, 1, 'b');
    q.push(1, 2, 'a');
    q.push(5, 3, 'c');
    q.push(3, 4, 'x', 42);
    const seen: [number, number, string | undefined, number][] = [];
    while (q.pop()) seen.push([q.time, q.kind, q.obj, q.arg]);
    expect(seen).toEqual([
      [1, 2, 'a', 0],
      [3, 4, 'x', 42],
      [5, 1, 'b', 0],
      [5, 3, 'c', 0],
    ]);
    expect(q.pop()).toBe(false);
    expect(q.peekTime()).toBe(Infinity);
  });

  it('grows past its first capacity and stays a heap under random pushes and pops', () => {
    const q = new EventQueue<number>(16);
    const rnd = seededRandom(3);
    const ref: number[] = [];
    let last = -Infinity;
    for (let i = 0; i < 5000; i++) {
      if (rnd() < 0.6 || q.length === 0) {
        const t = last + rnd() * 100;
        q.push(t, 0, i);
        ref.push(t);
      } else {
        expect(q.pop()).toBe(true);
        ref.sort((a, b) => a - b);
        expect(q.time).toBe(ref.shift());
        last = q.time;
      }
    }
    expect(q.length).toBe(ref.length);
  });
});
