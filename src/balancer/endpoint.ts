import type { OrcaReport } from '../grpc/orca.js';
import { Fifo } from '../util/fifo.js';
import type { Endpoint, EndpointHints, LoadReport } from './types.js';

/** A call open on an endpoint, as the endpoint tracks it: when it started and whether it ended. */
export interface OpenCall {
  readonly startedAtMs: number;
  readonly ended: boolean;
}

/**
 * An endpoint with the calls this router (or client) has open there: `inflight`, and the start of the
 * oldest open call, which catches a paused server at once. Calls end in any order; open calls wait in a
 * FIFO in start order and an ended one is dropped when it reaches the head, so the oldest open call is
 * always the first live entry, at amortised O(1) a call.
 *
 * Only call handles (picker.ts) start and end calls here: every data path — the router, the simulator,
 * the in-process client policy — keeps this figure the same way.
 */
export class TrackedEndpoint implements Endpoint {
  inflight = 0;
  oldestInflightStartMs: number | undefined = undefined;
  load: LoadReport | undefined = undefined;
  hints: EndpointHints | undefined = undefined;
  private readonly open = new Fifo<OpenCall>();

  constructor(
    readonly id: string,
    readonly address: string = id,
  ) {}

  /** `call` was sent here (not yet ended). */
  callStarted(call: OpenCall): void {
    this.open.push(call);
    this.inflight++;
    this.oldestInflightStartMs ??= call.startedAtMs;
  }

  /** `call`, started here, has ended (`call.ended` is already true). */
  callEnded(): void {
    this.inflight--;
    let head = this.open.peek();
    while (head?.ended) {
      this.open.shift();
      head = this.open.peek();
    }
    this.oldestInflightStartMs = head?.startedAtMs;
  }
}

/** An ORCA load report (a response's trailers) as the endpoint's load figures, received at `atMs`. */
export function orcaLoad(r: OrcaReport, atMs: number): LoadReport {
  return { cpu: r.cpuUtilization, memory: r.memUtilization, utilization: r.applicationUtilization, atMs };
}
