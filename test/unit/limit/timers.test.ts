import { ManualTimers } from '../../../src/util/timers.js';

describe('ManualTimers', () => {
  it('runs due timers in order of due time, then of creation, with now() at each due time', () => {
    const t = new ManualTimers(100);
    const log: string[] = [];
    t.setTimeout(() => log.push(`b@${t.now()}`), 10);
    t.setTimeout(() => log.push(`a@${t.now()}`), 5);
    t.setTimeout(() => log.push(`c@${t.now()}`), 10);
    const gone = t.setTimeout(() => log.push('never'), 1);
    t.clearTimeout(gone);
    t.advance(7);
    expect(log).toEqual(['a@105']);
    t.advance(100);
    expect(log).toEqual(['a@105', 'b@110', 'c@110']);
    expect(t.now()).toBe(207);
    expect(t.size).toBe(0);
  });

  it('runs a timer set by a timer when it falls due within the same advance', () => {
    const t = new ManualTimers();
    const log: number[] = [];
    t.setTimeout(() => t.setTimeout(() => log.push(t.now()), 3), 2);
    t.advance(10);
    expect(log).toEqual([5]);
  });
});
