import type * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { predictiveInterceptor, registerPredictiveBalancer } from '../../client/index.js';
import { renderBootstrap } from '../../xds/bootstrap.js';
import { EnvoyProcess } from '../bench/envoy.js';
import type { Processes } from './processes.js';
import type { TrafficPath } from './traffic.js';

/**
 * The demo's three data planes, each programmed by the operator from the same BackendPool: an Envoy
 * (ADS on the control port), a proxyless grpc-js channel in this process running sibyl's policy, and
 * sibyl routers (the data path of CacheTiers).
 */

/**
 * An Envoy bootstrapped at the operator (what `sibyl xds-bootstrap --kind envoy` prints), its log in
 * the demo's log folder, recorded with the demo's processes so `make demo-down` stops it too.
 */
export async function startEnvoy(o: {
  server: string;
  namespace: string;
  baseId: number;
  logs: string;
  procs: Processes;
}): Promise<EnvoyProcess> {
  const envoy = await EnvoyProcess.create(
    'envoy',
    o.baseId,
    { server: o.server, insecure: true, nodeId: 'demo-envoy', namespace: o.namespace },
    { bin: 'envoy', dir: o.logs },
  );
  o.procs.adopt('envoy', envoy.start({ detached: true }));
  await envoy.ready(60_000);
  return envoy;
}

/**
 * The README's proxyless client: @grpc/grpc-js-xds with the bootstrap `sibyl xds-bootstrap --kind grpc`
 * prints, sibyl's policy registered (the operator's cluster names it first), and the interceptor that
 * tells it each call's method. grpc-js-xds reads the bootstrap when its first xds: channel starts and
 * speaks only plaintext without a token to its server (hence the operator's
 * --xds-allow-unauthenticated).
 */
export function proxylessPath(server: string, pool: string): TrafficPath {
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = renderBootstrap('grpc', {
    server,
    insecure: true,
    nodeId: 'demo-grpc-js',
  });
  grpcXds.register();
  registerPredictiveBalancer();
  const options: grpc.ClientOptions = { interceptors: [predictiveInterceptor] };
  return { targets: [`xds:///${pool}`], options };
}

/** A router's gRPC listener and its /metrics address. */
export interface DemoRouter {
  listen: string;
  metrics: string;
}

/** Two `sibyl router`s subscribed to the operator with a ServiceAccount token. */
export async function startRouters(o: {
  procs: Processes;
  controlPort: number;
  tokenFile: string;
  namespace: string;
}): Promise<DemoRouter[]> {
  const routers: DemoRouter[] = [];
  for (const r of ['router-1', 'router-2']) {
    const a = await o.procs.start(
      r,
      [
        'router',
        '--control',
        `127.0.0.1:${o.controlPort}`,
        '--control-insecure',
        '--token-file',
        o.tokenFile,
        '--namespace',
        o.namespace,
        '--router-id',
        r,
        '--listen',
        '127.0.0.1:0',
        '--metrics-addr',
        '127.0.0.1:0',
      ],
      { waitForJson: true },
    );
    routers.push({ listen: String(a.listening), metrics: String(a.metrics) });
  }
  return routers;
}
