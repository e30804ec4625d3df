import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { resolvePoolSpec } from '../../api/resolve.js';
import type { BackendPoolSpec } from '../../api/backendpool.js';
import { systemClock } from '../../util/clock.js';
import { systemTimers } from '../../util/timers.js';
import { XdsServer, type XdsServerOptions } from '../../xds/server.js';
import type { XdsEndpointInput, XdsPoolInput } from '../../xds/types.js';
import { quantile } from '../sim/metrics.js';
import { echoClient, ready } from './echo-client.js';

/** sibyl's ADS on its own grpc-js server on loopback, as the operator serves it on the control API. */
export interface Ads {
  readonly xds: XdsServer;
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  stop(): Promise<void>;
}

/** An XdsServer (plaintext, no token unless `opts.auth`) in this process; `sibyl bench proxy` and the tests. */
export async function startAds(
  opts: Partial<XdsServerOptions> = {},
  creds = grpc.ServerCredentials.createInsecure(),
  port = 0,
): Promise<Ads> {
  const xds = new XdsServer({
    allowUnauthenticated: !opts.auth,
    clock: systemClock,
    timers: systemTimers,
    log: pino({ level: 'silent' }),
    ...opts,
  });
  const server = new grpc.Server();
  xds.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, creds, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    xds,
    server,
    port: bound,
    address: `127.0.0.1:${bound}`,
    stop: async () => {
      xds.close();
      server.forceShutdown();
    },
  };
}

/** A pool's xDS input: the spec resolved as the operator resolves it, one ready endpoint per address. */
export function poolInput(
  key: string,
  addresses: readonly string[],
  spec: Partial<BackendPoolSpec> = {},
  endpoint: (address: string, i: number) => Partial<XdsEndpointInput> = () => ({}),
): XdsPoolInput {
  return {
    key,
    match: { services: spec.match?.services ?? ['sibyl.demo.v1.Demo'], methods: spec.match?.methods ?? [] },
    spec: resolvePoolSpec({ ...spec, endpoints: addresses.map((address) => ({ address })) }),
    endpoints: addresses.map((address, i) => ({
      address,
      ready: true,
      draining: false,
      ...endpoint(address, i),
    })),
  };
}

/**
 * Each backend's service time as the latency model should predict it (XdsEndpointInput
 * .predictedServiceMs: the time one call holds a slot, without queueing): calls made one at a time
 * straight to it (after `warmup` unmeasured ones, for its JIT and connection), so none waits in its
 * queue, and of their latencies the `quantile`-th. Not the median: on a shared machine many calls
 * also wait for a CPU, on the client or the backend, which is no part of the time a slot is held; the
 * low end is the service time plus one loopback round trip, as Envoy's adaptive concurrency takes the
 * minimum RTT for the latency without queueing. The backends are calibrated at once, each by its own
 * channel.
 */
export const CALIBRATION = { calls: 100, warmup: 30, quantile: 0.1 } as const;

export async function calibrate(
  addresses: readonly string[],
  { calls, warmup, quantile: q } = CALIBRATION,
): Promise<number[]> {
  return Promise.all(
    addresses.map(async (address) => {
      const client = echoClient(address, { 'grpc.use_local_subchannel_pool': 1 });
      try {
        await ready(client);
        const ms: number[] = [];
        for (let i = 0; i < warmup + calls; i++) {
          const t0 = performance.now();
          await new Promise<void>((resolve, reject) =>
            client.echo({}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e) =>
              e ? reject(e) : resolve(),
            ),
          );
          if (i >= warmup) ms.push(performance.now() - t0);
        }
        return quantile(
          ms.sort((a, b) => a - b),
          q,
        );
      } finally {
        client.close();
      }
    }),
  );
}
