import type { Logger } from 'pino';
import { modelFromJson } from '../model/artifact.js';
import { dispatchSample } from '../model/dispatch.js';
import { ForwardModel } from '../model/forward.js';
import { createPredictor } from '../model/predictor.js';
import { createQuantileFn } from '../model/quantiles.js';
import type { Router } from './router.js';
import { systemClock, systemRandom } from '../util/clock.js';
import { systemTimers } from '../util/timers.js';
import { ControlClient } from '../control/client.js';
import { LoadCollector, methodCounted, type DispatchFeatures } from './load-collector.js';
import type { WireModel, WirePool } from '../control/messages.js';
import { tableFromWire } from './wire-table.js';

export interface RouterLinkOptions {
  address: string;
  ca?: Buffer;
  serverName?: string;
  token: () => Promise<string>;
  routerId: string;
  namespace: string;
  version: string;
  /** host:port where data planes reach this router (ControlClientOptions.advertise). */
  advertise?: string;
  log: Logger;
  /** Share of attempts kept as training samples (default 0.05). */
  sampleRate?: number;
}

/**
 * Connects a Router to the operator: snapshots and deltas become routing tables (applied atomically,
 * nacked when invalid), attempts feed the load collector, and load reports go back every interval.
 */
export function linkRouter(router: Router, o: RouterLinkOptions): ControlClient {
  const collector = new LoadCollector(systemRandom);
  const rate = o.sampleRate ?? 0.05;
  let modelVersion: string | undefined;
  router.setObserver({
    // what the pool's policy knew of the endpoint at dispatch (src/model/dispatch.ts)
    started: (_pool, call) =>
      systemRandom() < rate ? dispatchSample(call.balancer, call.endpoint, call.req) : undefined,
    ended: (pool, call, context, outcome) =>
      collector.record(
        pool,
        call.endpoint.address,
        methodCounted(outcome.code, call.probe) ? call.req.method : undefined,
        outcome.code,
        outcome.latencyMs,
        !outcome.ok,
        context as DispatchFeatures | undefined,
        outcome.censored,
      ),
  });
  const client = new ControlClient({
    address: o.address,
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.serverName ? { serverName: o.serverName } : {}),
    token: o.token,
    routerId: o.routerId,
    namespace: o.namespace,
    version: o.version,
    ...(o.advertise ? { advertise: o.advertise } : {}),
    apply: (pools: readonly WirePool[], version: number, model: WireModel | undefined) => {
      const table = tableFromWire(pools, version, systemClock.now());
      if (model && model.version !== modelVersion) {
        // A model that does not load is refused with the whole update (nack); the old one stays.
        const fwd = new ForwardModel(modelFromJson(model.artifactJson, `model ${model.version}`));
        const predictor = createPredictor(fwd);
        // the pick's prediction, and each call's own quantiles for its try deadline and hedge delay
        router.setPredictor(predictor);
        router.setQuantiles(createQuantileFn(fwd));
        modelVersion = model.version;
        o.log.info({ model: model.version }, 'latency model installed');
      }
      router.applyTable(table);
      return undefined;
    },
    report: () => ({ ...collector.drain(router.liveEndpoints()), caches: router.cacheCounters() }),
    log: o.log,
    clock: systemClock,
    timers: systemTimers,
    random: systemRandom,
  });
  client.start();
  return client;
}
