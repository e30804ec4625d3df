// Importing this module registers every Limit algorithm.
import './gradient2.js';
import './aimd.js';
import './vegas.js';
import './fixed.js';
import './queue-delay.js';
export * from './types.js';
export * from './registry.js';
export * from './limiter.js';
export { Gradient2Limit } from './gradient2.js';
export { AimdLimit } from './aimd.js';
export { VegasLimit } from './vegas.js';
export { FixedLimit } from './fixed.js';
export { QueueDelayLimit, QUEUE_DELAY_DEFAULTS } from './queue-delay.js';
export { WindowedLimit } from './windowed.js';
export { releaseOutcome } from './outcome.js';
