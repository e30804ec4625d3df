import type { BackendPoolSpec } from '../api/backendpool.js';
import { resolveConcurrency } from '../api/resolve.js';
import { SibylError } from '../util/errors.js';
import type { Limit, LimitDeps, LimitFactory, LimitOptions } from './types.js';
import { WindowedLimit } from './windowed.js';

/** Limit algorithms register themselves by name, like the balancers. */
const factories = new Map<string, LimitFactory>();

export function registerLimit(name: string, factory: LimitFactory): void {
  factories.set(name, factory);
}

export function createLimit(name: string, options: LimitOptions, deps: LimitDeps): Limit {
  const f = factories.get(name);
  if (!f) {
    throw new SibylError(
      'ERR_CONFIG_INVALID',
      `unknown concurrency algorithm "${name}" (known: ${limitNames().join(', ')})`,
    );
  }
  return f(options, deps);
}

export function limitNames(): string[] {
  return [...factories.keys()].sort();
}

/**
 * The Limit a BackendPool's spec.concurrency asks for, with the CRD's defaults (QueueDelay, initial 20,
 * min 1, max 1000; src/api/resolve.ts reads them from the schema), as a router runs it: Gradient2 behind a
 * WindowedLimit, the composition Netflix gives for it (windowed.ts says why); the others sample by sample
 * (QueueDelay keeps its own windows). `createLimit` builds an algorithm alone.
 */
export function createLimitFromSpec(spec: BackendPoolSpec['concurrency'], deps: LimitDeps): Limit {
  const c = resolveConcurrency(spec ?? {});
  const options: LimitOptions = {
    initialLimit: c.initialLimit,
    minLimit: c.minLimit,
    maxLimit: c.maxLimit,
    targetLatencyMs: c.targetLatencyMs,
  };
  const limit = createLimit(c.algorithm, options, deps);
  return c.algorithm === 'Gradient2' ? new WindowedLimit(limit) : limit;
}
