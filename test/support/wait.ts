import { freePort } from '../../src/util/net.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a truthy value (which is returned) or the time is up; then throws
 * with what was awaited and the last error seen, so a failing test says what did not happen.
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out waiting for ${opts.what ?? 'a condition'} (last: ${why})`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/**
 * As waitFor, but resolves false when the time is up instead of throwing: for a resilience case, which
 * records a target it missed as a failed check (with what it measured) and goes on to its figures.
 */
export async function eventually(
  check: () => Promise<unknown> | unknown,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<boolean> {
  try {
    await waitFor(async () => Boolean(await check()), opts);
    return true;
  } catch (e) {
    console.log(`[wait] ${(e as Error).message}`);
    return false;
  }
}

/** A promise and its resolve, for a test that decides when something happens (a gate, a signal). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export { freePort };
