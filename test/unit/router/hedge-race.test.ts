import { raceWithHedge, type Launched } from '../../../src/router/hedge.js';
import type { Attempt, AttemptResult } from '../../../src/router/attempt.js';

// The hedging race when both attempts answer at nearly the same time: the hedge's response headers
// claim the client's stream, then the first attempt's arrive, lose the claim, and it ends first
// (cancelled). Its result must not be taken for the call's, or the hedge that is answering the client
// would be cancelled and the client left without a status until its deadline (found by the resilience
// suite's black-hole case).
function launched(result: Promise<AttemptResult>): Launched & { cancelled: string[] } {
  const cancelled: string[] = [];
  const attempt = {
    cancel: (_code: number, message: string) => cancelled.push(message),
  } as unknown as Attempt;
  return { attempt, done: result, cancelled };
}

const result = (r: Partial<AttemptResult>): AttemptResult => ({
  code: 0,
  message: '',
  delivered: true,
  reachedServer: true,
  deliver: () => undefined,
  ...r,
});

it('an attempt that lost the stream to its hedge yields to the hedge, which is not cancelled', async () => {
  let answer!: (r: AttemptResult) => void;
  const first = launched(Promise.resolve(result({ code: 1, lostRace: true })));
  const second = launched(new Promise((r) => (answer = r)));
  const race = raceWithHedge(
    { attempt: first.attempt, done: new Promise((r) => setTimeout(() => r(first.done), 20)) },
    5,
    () => second,
    () => true,
  );
  setTimeout(() => answer(result({ code: 0 })), 40);
  expect((await race).code).toBe(0);
  expect(second.cancelled).toEqual([]);
});

it('the first final answer still wins and cancels the other attempt', async () => {
  const first = launched(new Promise((r) => setTimeout(() => r(result({ code: 0 })), 20)));
  const second = launched(new Promise(() => undefined));
  const r = await raceWithHedge(
    first,
    5,
    () => second,
    () => true,
  );
  expect(r.code).toBe(0);
  expect(second.cancelled).toHaveLength(1);
});
