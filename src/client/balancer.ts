import { connectivityState, experimental, type ChannelOptions } from '@grpc/grpc-js';
import { createBalancer, type Balancer } from '../balancer/index.js';
import { Picker } from '../balancer/picker.js';
import { sameValue } from '../util/equal.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { PREDICTIVE_LB, PredictiveLbConfig } from './config.js';
import { ClientEndpoint, ClientPicker } from './picker.js';

const ConnectivityState = connectivityState;

/** The xDS resolver's per-endpoint weight (grpc-js-xds sets it on endpoints; not public API). */
interface WeightedEndpoint extends experimental.Endpoint {
  endpointWeight?: number;
}

/**
 * sibyl's policy inside a grpc-js channel (grpc-js's LoadBalancer contract; the shape of its
 * round_robin): one pick_first child per endpoint keeps a connection to each, and every call is placed
 * by the sibyl policy the config names (Predictive by default) through the same Picker and call handles
 * as the router and the simulator. It sees its own calls (in flight, latencies, failures, ORCA load
 * reports from trailers) and, through xDS, the operator's endpoint weights as a prior.
 *
 * State survives address updates: an endpoint that stays keeps its child and its figures (xDS pushes a
 * new endpoint list whenever a weight changes).
 */
export class PredictiveLoadBalancer implements experimental.LoadBalancer {
  private readonly endpoints = new Map<string, ClientEndpoint>();
  private balancer: Balancer | undefined;
  private config: PredictiveLbConfig | undefined;
  private picker: Picker<ClientEndpoint> | undefined;
  private readonly child: experimental.ChannelControlHelper;
  private updating = false;
  private lastError: string | null = null;
  private state = ConnectivityState.IDLE;

  constructor(
    private readonly helper: experimental.ChannelControlHelper,
    private readonly deps: { clock: Clock; random: Random } = { clock: systemClock, random: systemRandom },
  ) {
    this.child = experimental.createChildChannelControlHelper(helper, {
      updateState: (_state, _picker, error) => {
        if (error) this.lastError = error;
        this.publish();
      },
    });
  }

  updateAddressList(
    list: experimental.StatusOr<experimental.Endpoint[]>,
    lbConfig: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    note: string,
  ): boolean {
    if (!(lbConfig instanceof PredictiveLbConfig)) return false;
    if (!list.ok) {
      if (this.endpoints.size === 0) this.fail(list.error.details);
      return true;
    }
    if (!this.config || !sameValue(this.config.json, lbConfig.json)) {
      this.config = lbConfig;
      this.balancer = createBalancer(lbConfig.balancer, this.deps);
      this.picker = new Picker(this.balancer, { clock: this.deps.clock });
    }
    this.updating = true;
    const wanted = new Map(list.value.map((e) => [experimental.endpointToString(e), e as WeightedEndpoint]));
    for (const [key, c] of this.endpoints) {
      if (wanted.has(key)) continue;
      c.leaf.destroy();
      this.endpoints.delete(key);
      this.balancer?.onEndpointRemoved?.(key);
    }
    for (const [key, e] of wanted) {
      let c = this.endpoints.get(key);
      if (c) c.leaf.updateEndpoint(e, options);
      else {
        c = new ClientEndpoint(key, new experimental.LeafLoadBalancer(e, this.child, options, note));
        this.endpoints.set(key, c);
        c.leaf.startConnecting();
      }
      c.weight = e.endpointWeight;
    }
    this.setHints();
    this.updating = false;
    if (wanted.size === 0) this.fail(`no endpoints (${note})`);
    else this.publish();
    return true;
  }

  /** The operator's weights as costs relative to the pool's mean (a prior for Predictive's estimate). */
  private setHints(): void {
    const weights = [...this.endpoints.values()].map((c) => c.weight).filter((w) => w !== undefined);
    const mean = weights.reduce((a, b) => a + b, 0) / weights.length;
    const now = this.deps.clock.now();
    for (const c of this.endpoints.values()) {
      c.ep.hints = c.weight && mean > 0 ? { relativeCost: mean / c.weight, atMs: now } : undefined;
    }
  }

  /** The channel's state and picker from the children's (round_robin's aggregation rule). */
  private publish(): void {
    if (this.updating || !this.picker) return;
    const all = [...this.endpoints.values()];
    const ready = all.filter((c) => c.leaf.getConnectivityState() === ConnectivityState.READY);
    if (ready.length > 0) {
      this.update(ConnectivityState.READY, new ClientPicker(ready, this.picker, this.deps.clock), null);
    } else if (all.some((c) => c.leaf.getConnectivityState() === ConnectivityState.CONNECTING)) {
      this.update(ConnectivityState.CONNECTING, new experimental.QueuePicker(this), null);
    } else if (all.some((c) => c.leaf.getConnectivityState() === ConnectivityState.TRANSIENT_FAILURE)) {
      return this.fail(`${PREDICTIVE_LB}: no connection established; last error: ${this.lastError}`);
    } else {
      this.update(ConnectivityState.IDLE, new experimental.QueuePicker(this), null);
    }
    // Keep every endpoint connected, as round_robin does: any may be picked.
    for (const c of all) if (c.leaf.getConnectivityState() === ConnectivityState.IDLE) c.leaf.exitIdle();
  }

  private fail(details: string): void {
    this.update(
      ConnectivityState.TRANSIENT_FAILURE,
      new experimental.UnavailablePicker({ details }),
      details,
    );
  }

  private update(state: connectivityState, picker: experimental.Picker, error: string | null): void {
    this.state = state;
    this.helper.updateState(state, picker, error);
  }

  exitIdle(): void {
    for (const c of this.endpoints.values()) c.leaf.exitIdle();
  }

  resetBackoff(): void {
    // No backoff of its own: the children's subchannels keep theirs.
  }

  destroy(): void {
    for (const c of this.endpoints.values()) c.leaf.destroy();
    this.endpoints.clear();
  }

  getTypeName(): string {
    return PREDICTIVE_LB;
  }

  /** For tests and status: the connectivity state last reported. */
  get connectivity(): connectivityState {
    return this.state;
  }

  /** For tests: the endpoints' sibyl figures. */
  figures(): ReadonlyMap<string, ClientEndpoint> {
    return this.endpoints;
  }
}
