import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { systemClock, systemRandom, type Clock, type Random } from '../../util/clock.js';
import { SibylError, errorMessage } from '../../util/errors.js';
import { formatAddress, parseListenAddress } from '../../grpc/address.js';
import { createControlServer } from './http.js';
import { BackendMetrics } from './metrics.js';
import type { ServiceSettings } from './model.js';
import { LoadSampler } from './orca.js';
import { orcaService } from './orca-service.js';
import { orcaServiceDefinition } from '../../grpc/orca-service.js';
import { demoServiceDefinition } from './proto.js';
import { addReflection } from './reflection.js';
import { createDemoService } from './service.js';
import { BackendState } from './state.js';

export interface BackendOptions {
  /** host:port for gRPC; port 0 picks a free one. Default 127.0.0.1:0. */
  listen?: string;
  /** host:port for /metrics, /healthz and /control; absent = no HTTP listener. */
  metricsAddr?: string;
  name?: string;
  settings?: Partial<ServiceSettings>;
  /** Parallel slots (0 = unlimited). */
  concurrency?: number;
  /** ORCA load reports: in every call's trailers, and out of band (OpenRcaService). */
  orca?: boolean;
  reflection?: boolean;
  /** prom-client's process metrics (default true; tests running many backends may turn them off). */
  defaultMetrics?: boolean;
  log?: Logger;
  clock?: Clock;
  random?: Random;
}

export interface Backend {
  readonly name: string;
  /** The bound gRPC address, host:port. */
  readonly address: string;
  readonly port: number;
  /** The bound HTTP address, when metricsAddr was given. */
  readonly metricsAddress?: string;
  readonly state: BackendState;
  readonly metrics: BackendMetrics;
  /** Finishes open calls (up to graceMs, then cancels them) and closes both listeners. */
  stop(graceMs?: number): Promise<void>;
  /** Cancels every call and closes at once, as a crash would (for tests of failover). */
  kill(): void;
}

/** Starts a sibyl.demo.v1.Demo server (and its HTTP side); resolves once both listen. */
export async function startBackend(opts: BackendOptions = {}): Promise<Backend> {
  const log = opts.log ?? pino({ level: 'info' });
  const clock = opts.clock ?? systemClock;
  const state = new BackendState(opts.settings, opts.concurrency ?? 0);
  const metrics = new BackendMetrics(state.slots, { defaultMetrics: opts.defaultMetrics });
  const listen = parseListenAddress(opts.listen ?? '127.0.0.1:0');
  const server = new grpc.Server({
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  const port0 = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      formatAddress(listen.host, listen.port),
      grpc.ServerCredentials.createInsecure(),
      (err, port) =>
        err
          ? reject(new SibylError('ERR_USAGE', `cannot listen on ${opts.listen}: ${err.message}`))
          : resolve(port),
    );
  });
  const name = opts.name ?? `backend-${port0}`;
  const load = opts.orca ? new LoadSampler(clock, () => state.slots.busyShare) : undefined;
  const deps = { name, state, metrics, clock, random: opts.random ?? systemRandom, log, load };
  server.addService(demoServiceDefinition(), createDemoService(deps));
  // With ORCA on, the figures go out of band too (OpenRcaService), for clients that subscribe.
  if (load)
    server.addService(
      orcaServiceDefinition(),
      orcaService(load, () => state.slots.busyShare, metrics.orcaStreams),
    );
  if (opts.reflection) addReflection(server, log);

  let http: HttpServer | undefined;
  let metricsAddress: string | undefined;
  if (opts.metricsAddr) {
    const m = parseListenAddress(opts.metricsAddr, '--metrics-addr');
    http = createControlServer(state, metrics, log);
    const h = http;
    await new Promise<void>((resolve, reject) => {
      h.once('error', (e) =>
        reject(new SibylError('ERR_USAGE', `cannot listen on ${opts.metricsAddr}: ${e.message}`)),
      );
      h.listen(m.port, m.host, resolve);
    });
    h.on('error', (e) => log.error({ err: e.message }, 'metrics listener error'));
    metricsAddress = formatAddress(m.host, (h.address() as AddressInfo).port);
  }

  const closeHttp = () =>
    new Promise<void>((resolve) => {
      if (!http) return resolve();
      http.closeAllConnections();
      http.close(() => resolve());
    });

  return {
    name,
    address: formatAddress(listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host, port0),
    port: port0,
    metricsAddress,
    state,
    metrics,
    async stop(graceMs = 5000) {
      state.update({ pause: false });
      await Promise.all([
        new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown((err) => {
            if (err) log.warn({ err: errorMessage(err) }, 'graceful shutdown failed');
            clearTimeout(t);
            resolve();
          });
        }),
        closeHttp(),
      ]);
    },
    kill() {
      server.forceShutdown();
      void closeHttp();
    },
  };
}
