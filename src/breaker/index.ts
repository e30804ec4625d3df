export * from './circuit-breaker.js';
export * from './breaker-set.js';
