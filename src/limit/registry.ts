import type { BackendPoolSpec } from '../api/backendpool.js';
import { parseDuration } from '../util/duration.js';
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
 * The Limit a BackendPool's spec.concurrency asks for (Gradient2 and the CRD defaults when unset), as a
 * router runs it: Gradient2 behind a WindowedLimit, the composition Netflix gives for it (windowed.ts
 * says why); the others sample by sample. `createLimit` builds an algorithm alone.
 */
export function createLimitFromSpec(spec: BackendPoolSpec['concurrency'], deps: LimitDeps): Limit {
  const options: LimitOptions = {
    initialLimit: spec?.initialLimit,
    minLimit: spec?.minLimit,
    maxLimit: spec?.maxLimit,
    targetLatencyMs: spec?.targetLatency ? parseDuration(spec.targetLatency) : undefined,
  };
  const name = spec?.algorithm ?? 'Gradient2';
  const limit = createLimit(name, options, deps);
  return name === 'Gradient2' ? new WindowedLimit(limit) : limit;
}
