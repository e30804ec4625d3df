import type { ConcurrencySpec } from '../api/resolve.js';
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
 * The Limit a BackendPool's spec.concurrency asks for (resolved: src/api/resolve.ts applies the CRD's
 * defaults, QueueDelay among them), as a router runs it: Gradient2 behind a WindowedLimit, the
 * composition Netflix gives for it (windowed.ts says why); the others sample by sample (QueueDelay keeps
 * its own windows). `createLimit` builds an algorithm alone.
 */
export function createLimitFromSpec(spec: ConcurrencySpec, deps: LimitDeps): Limit {
  const options: LimitOptions = {
    initialLimit: spec.initialLimit,
    minLimit: spec.minLimit,
    maxLimit: spec.maxLimit,
    targetLatencyMs: spec.targetLatencyMs,
  };
  const limit = createLimit(spec.algorithm, options, deps);
  return spec.algorithm === 'Gradient2' ? new WindowedLimit(limit) : limit;
}
