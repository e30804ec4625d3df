import { raceWithHedge, type Launched } from '../../../src/router/hedge.js';
import type { Attempt, AttemptResult } from '../../../src/router/attempt.js';
import { ManualTimers } from '../../../src/util/timers.js';

// The hedging race when both attempts answer at nearly the same time: the hedge's response headers
// claim the client's stream, then the first attempt's arrive, lose the claim, and it ends first
// (cancelled). Its result must not be taken for the call's, or the hedge that is answering the client
// would be cancelled and the client left without a status until its deadline (found by the resilience
// suite's black-hole case). The race runs on a controlled clock: the test says when the hedge delay
// has passed and in which order the attempts end.
const HEDGE_DELAY_MS = 5;

interface Pending extends Launched {
  cancelled: string[];
  /** Whether each cancel said the attempt's latency is a lower bound (CallOutcome.censored). */
  censored: boolean[];
  end: (r: AttemptResult) => void;
}

function pending(): Pending {
  const cancelled: string[] = [];
  const censored: boolean[] = [];
  const attempt = {
    cancel: (_code: number, message: string, c = false) => {
      cancelled.push(message);
      censored.push(c);
    },
  } as unknown as Attempt;
  let end!: (r: AttemptResult) => void;
  const done = new Promise<AttemptResult>((r) => (end = r));
  return { attempt, done, cancelled, censored, end };
}

const result = (r: Partial<AttemptResult>): AttemptResult => ({
  code: 0,
  message: '',
  delivered: true,
  reachedServer: true,
  deliver: () => undefined,
  ...r,
});

/** Lets the race's promise continuations run; no time passes (the clock is the test's). */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A race of a first attempt and, once the hedge delay has passed on the test's clock, a second. */
function race() {
  const clock = new ManualTimers();
  const first = pending();
  const second = pending();
  const hedges: Pending[] = [];
  const answer = raceWithHedge(
    first,
    HEDGE_DELAY_MS,
    () => (hedges.push(second), second),
    () => true,
    clock,
  );
  return { clock, first, second, answer, hedges };
}

it('an attempt that lost the stream to its hedge yields to the hedge, which is not cancelled', async () => {
  const r = race();
  const { clock, first, second } = r;
  clock.advance(HEDGE_DELAY_MS - 1);
  await settle();
  expect(r.hedges).toEqual([]); // not before the delay
  clock.advance(1);
  await settle();
  expect(r.hedges).toEqual([second]);
  // The hedge's headers claimed the stream: the first attempt ends first, having lost the race.
  first.end(result({ code: 1, lostRace: true }));
  await settle();
  second.end(result({ code: 0 }));
  expect((await r.answer).code).toBe(0);
  expect(second.cancelled).toEqual([]);
});

it('the first final answer still wins and cancels the other attempt', async () => {
  const r = race();
  const { clock, first, second } = r;
  clock.advance(HEDGE_DELAY_MS);
  await settle();
  expect(r.hedges).toEqual([second]);
  first.end(result({ code: 0 }));
  expect((await r.answer).code).toBe(0);
  expect(second.cancelled).toHaveLength(1);
  // the loser's latency is a lower bound, not an answer: its handle ends censored
  expect(second.censored).toEqual([true]);
  expect(first.cancelled).toEqual([]);
});

it('an answer within the delay launches no hedge and leaves no timer behind', async () => {
  const r = race();
  const { clock, first } = r;
  clock.advance(HEDGE_DELAY_MS - 1);
  first.end(result({ code: 0 }));
  expect((await r.answer).code).toBe(0);
  expect(clock.size).toBe(0);
  clock.advance(HEDGE_DELAY_MS);
  await settle();
  expect(r.hedges).toEqual([]);
});
