// Importing this module registers every policy.
import './round-robin.js';
export * from './types.js';
export * from './registry.js';
