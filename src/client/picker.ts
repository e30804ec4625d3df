import { experimental, type Metadata, type status } from '@grpc/grpc-js';
import { TrackedEndpoint, orcaLoad } from '../balancer/endpoint.js';
import type { Picker } from '../balancer/picker.js';
import { ORCA_TRAILER, decodeOrcaReport } from '../grpc/orca.js';
import { Status } from '../grpc/status.js';
import type { Clock } from '../util/clock.js';

/**
 * One endpoint of the in-process policy: its sibyl figures (in flight, load, the operator's weight as
 * a hint) and grpc-js's child balancer for its addresses (pick_first, as round_robin does).
 */
export class ClientEndpoint {
  readonly ep: TrackedEndpoint;
  readonly limiter = undefined;
  /** xDS endpoint weight (locality weight × endpoint weight), when the resolver gave one. */
  weight: number | undefined;

  constructor(
    readonly key: string,
    public leaf: experimental.LeafLoadBalancer,
  ) {
    this.ep = new TrackedEndpoint(key);
  }
}

/**
 * The method name a client interceptor passes to the picker (grpc-js's pick sees metadata, not the
 * method). The picker takes it out of the call's metadata, so it never goes on the wire.
 */
export const METHOD_KEY = 'x-sibyl-pick-method';

/**
 * A grpc-js picker over sibyl's Picker: an immutable snapshot of the READY endpoints, as grpc-js
 * pickers are. A pick chooses an endpoint with the sibyl policy, then asks that endpoint's own picker
 * for the subchannel; the call handle starts when grpc-js starts the call on it and ends with its
 * status, the ORCA report of its trailers feeding the endpoint's load.
 */
export class ClientPicker implements experimental.Picker {
  constructor(
    private readonly ready: readonly ClientEndpoint[],
    private readonly picker: Picker<ClientEndpoint>,
    private readonly clock: Clock,
  ) {}

  pick(args: experimental.PickArgs): experimental.PickResult {
    const method = methodOf(args.metadata);
    // The operator's weights stand until it sends others (xDS is state of the world): fresh hints.
    const now = this.clock.now();
    for (const c of this.ready) if (c.ep.hints) c.ep.hints.atMs = now;
    const r = this.picker.pickNow(this.ready, { method, payloadBytes: 0 });
    if (r.type !== 'complete') {
      return {
        pickResultType: experimental.PickResultType.QUEUE,
        subchannel: null,
        status: null,
        onCallStarted: null,
        onCallEnded: null,
      };
    }
    const call = r.call;
    const child = call.target.leaf.getPicker().pick(args);
    if (child.pickResultType !== experimental.PickResultType.COMPLETE) {
      call.end(Status.CANCELLED); // never sent
      return child;
    }
    return {
      ...child,
      onCallStarted: () => {
        child.onCallStarted?.();
        call.start();
      },
      onCallEnded: (code: status, details: string, trailers: Metadata) => {
        child.onCallEnded?.(code, details, trailers);
        const orca = trailers.get(ORCA_TRAILER)[0];
        const report = Buffer.isBuffer(orca) ? decodeOrcaReport(orca) : undefined;
        // CANCELLED: the application cancelled the call before its answer (grpc-js "Cancelled on
        // client"); its latency is a lower bound, not a sample (CallOutcome.censored)
        call.end(code, report && orcaLoad(report, this.clock.now()), code === Status.CANCELLED);
      },
    };
  }
}

function methodOf(metadata: Metadata): string {
  const v = metadata.get(METHOD_KEY)[0];
  if (v === undefined) return '';
  metadata.remove(METHOD_KEY);
  return typeof v === 'string' ? v : v.toString();
}
