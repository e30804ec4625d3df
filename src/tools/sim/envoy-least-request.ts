import { resolveBreaker } from '../../api/resolve.js';
import type { Balancer, BalancerDeps, CallOutcome, Endpoint, PickRequest } from '../../balancer/index.js';
import { OutlierDetection } from './outlier-detection.js';

export const ENVOY_LEAST_REQUEST = 'EnvoyLeastRequest';

/** Envoy's defaults: `active_request_bias` 1.0, `choice_count` 2. */
const ACTIVE_REQUEST_BIAS = 1.0;
const CHOICE_COUNT = 2;

/** The endpoint weight the operator pushed (EDS load_balancing_weight); 1 before any push. */
export const weightOf = (ep: Endpoint): number => ep.hints?.weight ?? 1;

interface Entry {
  ep: Endpoint;
  deadline: number;
  /** Insertion order: equal deadlines go first in, first out, as in Envoy's EdfScheduler. */
  order: number;
}

/**
 * Envoy's LEAST_REQUEST load balancer as one Envoy runs it, over its own active requests (each
 * simulated router is one Envoy; `inflight` is its upstream rq_active). From Envoy's docs ("Weighted
 * least request", arch_overview/load_balancing/load_balancers, and the least_request.proto
 * `active_request_bias` field) and source (source/extensions/load_balancing_policies/least_request/
 * least_request_lb.{h,cc}, EdfScheduler in source/common/upstream/edf_scheduler.h):
 * - all endpoint weights equal: N_CHOICES, `choice_count` hosts drawn at random (with replacement),
 *   the one with the fewest active requests wins, the first drawn on a tie (P2C);
 * - weights differ: an earliest-deadline-first weighted round robin. A pick pops the host with the
 *   earliest deadline, the schedule's time moves to that deadline, and the host goes back at time
 *   + 1 / w, where w = weight / (active_requests + 1)^active_request_bias is computed at that moment
 *   (pick/insert time, before the new request counts): a busy host comes round later, but only its
 *   own re-insertion sees its load, never the others'.
 * The schedule is rebuilt when the weights change (Envoy rebuilds it on every host-set update). Envoy
 * 1.29+ starts a new schedule a random number of picks in, so that its workers and its fleet do not
 * all begin on the same host; a random phase per host (deadline u / w) stands for that here.
 * Hosts its outlier detection ejected are left out (outlier-detection.ts, with the breaker's defaults,
 * as the operator programs it); when every host is ejected, all are used (Envoy's panic mode).
 */
export class EnvoyLeastRequest implements Balancer {
  readonly name = ENVOY_LEAST_REQUEST;
  private weights: number[] = [];
  private ids: string[] = [];
  /** Undefined while every weight is equal (P2C). */
  private schedule: Entry[] | undefined;
  private now = 0;
  private order = 0;
  private readonly outliers: OutlierDetection;
  private clusterSize = 0;

  constructor(
    private readonly deps: BalancerDeps,
    private readonly bias = ACTIVE_REQUEST_BIAS,
    private readonly choices = CHOICE_COUNT,
  ) {
    this.outliers = new OutlierDetection(resolveBreaker(undefined), deps.clock);
  }

  pick(candidates: readonly Endpoint[]): Endpoint {
    this.clusterSize = candidates.length;
    const healthy = candidates.filter((ep) => this.outliers.available(ep.id));
    const hosts = healthy.length > 0 ? healthy : candidates;
    if (this.changed(hosts)) this.rebuild(hosts);
    return this.schedule ? this.pickAndAdd(this.schedule) : this.p2c(hosts);
  }

  onCallEnded(ep: Endpoint, _req: PickRequest, outcome: CallOutcome): void {
    this.outliers.onResult(ep.id, outcome.ok, this.clusterSize);
  }

  /** weight / (active + 1)^bias. */
  effectiveWeight(ep: Endpoint): number {
    return weightOf(ep) / Math.pow(ep.inflight + 1, this.bias);
  }

  private p2c(hosts: readonly Endpoint[]): Endpoint {
    const random = this.deps.random;
    let best: Endpoint | undefined;
    for (let k = 0; k < this.choices; k++) {
      const h = hosts[Math.floor(random() * hosts.length)] as Endpoint;
      if (!best || h.inflight < best.inflight) best = h;
    }
    return best as Endpoint;
  }

  private pickAndAdd(entries: Entry[]): Endpoint {
    let first = entries[0] as Entry;
    for (const e of entries) {
      if (e.deadline < first.deadline || (e.deadline === first.deadline && e.order < first.order)) first = e;
    }
    this.now = first.deadline;
    first.deadline = this.now + 1 / this.effectiveWeight(first.ep);
    first.order = this.order++;
    return first.ep;
  }

  private changed(candidates: readonly Endpoint[]): boolean {
    if (candidates.length !== this.ids.length) return true;
    for (let i = 0; i < candidates.length; i++) {
      const ep = candidates[i] as Endpoint;
      if (ep.id !== this.ids[i] || weightOf(ep) !== this.weights[i]) return true;
    }
    return false;
  }

  private rebuild(candidates: readonly Endpoint[]): void {
    this.ids = candidates.map((ep) => ep.id);
    this.weights = candidates.map(weightOf);
    const w0 = this.weights[0];
    if (this.weights.every((w) => w === w0)) {
      this.schedule = undefined;
      return;
    }
    this.now = 0;
    this.order = 0;
    this.schedule = candidates.map((ep) => ({
      ep,
      deadline: this.deps.random() / this.effectiveWeight(ep),
      order: this.order++,
    }));
  }
}
