// Importing this module registers every policy.
import './round-robin.js';
import './least-request.js';
import './peak-ewma.js';
import './prequal.js';
import './predictive.js';
export * from './types.js';
export * from './registry.js';
export type { PredictFn, PredictiveFeatures } from './predictive.js';
