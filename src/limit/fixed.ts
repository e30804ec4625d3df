import { registerLimit } from './registry.js';
import { bounds, type Limit, type LimitOptions } from './types.js';

/** Fixed: the initial limit, always (Netflix's FixedLimit). For a known capacity, and as a baseline. */
export class FixedLimit implements Limit {
  readonly name = 'Fixed';
  readonly limit: number;
  constructor(options: LimitOptions = {}) {
    this.limit = Math.floor(bounds(options).initial);
  }
  onSample(): void {}
}

registerLimit('Fixed', (options) => new FixedLimit(options));
