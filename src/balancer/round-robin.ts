import { Type } from '@sinclair/typebox';
import { registerBalancer } from './registry.js';
import type { Balancer, BalancerDeps, Endpoint } from './types.js';

/** RoundRobin: each candidate in turn, starting at a random offset so routers do not move in lockstep. */
export class RoundRobin implements Balancer {
  readonly name = 'RoundRobin';
  private next: number;
  constructor(deps: BalancerDeps) {
    this.next = Math.floor(deps.random() * 1_000_000);
  }
  pick(candidates: readonly Endpoint[]): Endpoint {
    const ep = candidates[this.next % candidates.length] as Endpoint;
    this.next = (this.next + 1) % 1_000_000_007;
    return ep;
  }
  onCallEnded(): void {}
}

registerBalancer(
  'RoundRobin',
  Type.Object({}, { additionalProperties: false }),
  (_config, deps) => new RoundRobin(deps),
);
