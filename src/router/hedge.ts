import { Status } from '../grpc/status.js';
import { systemTimers, type TimerHandle, type Timers } from '../util/timers.js';
import type { Attempt, AttemptResult } from './attempt.js';

/** An attempt under way. */
export interface Launched {
  attempt: Attempt;
  done: Promise<AttemptResult>;
}

/**
 * The hedging race (docs/architecture.md, "Balancing, breakers and limits"; "The Tail at Scale", Dean & Barroso 2013): if `first` has no result
 * within `delayMs`, `launchSecond` may start another attempt elsewhere (it returns undefined when it
 * may not: budget spent, no other endpoint, the response already begun). The first result that is
 * final wins and the other attempt is cancelled; a result that could still be retried (UNAVAILABLE
 * before any response) lets the other attempt finish instead. The hedge delay runs on `timers`
 * (injected, so a test drives the race on a controlled clock).
 */
export async function raceWithHedge(
  first: Launched,
  delayMs: number,
  launchSecond: () => Launched | undefined,
  isFinal: (r: AttemptResult) => boolean,
  timers: Timers = systemTimers,
): Promise<AttemptResult> {
  let timer: TimerHandle | undefined;
  const due = new Promise<undefined>(
    (resolve) => (timer = timers.setTimeout(() => resolve(undefined), delayMs)),
  );
  const early = await Promise.race([first.done, due]);
  timers.clearTimeout(timer);
  if (early) return early;
  const second = launchSecond();
  if (!second) return first.done;
  const winner = await Promise.race([
    first.done.then((r) => ({ r, other: second })),
    second.done.then((r) => ({ r, other: first })),
  ]);
  // The first to end may be the one that lost the client's stream to the other (its response came
  // second): the other is answering the client, so its result is the call's; cancelling it would leave
  // the client without a status until its deadline.
  if (winner.r.lostRace) return winner.other.done;
  if (winner.r.delivered || isFinal(winner.r)) {
    // censored: the loser's latency so far is a lower bound, not an answer (CallOutcome.censored)
    winner.other.attempt.cancel(Status.CANCELLED, 'the hedged call was answered elsewhere', true);
    return winner.r;
  }
  return winner.other.done;
}
