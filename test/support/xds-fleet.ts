import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { ControlClient } from '../../src/control/client.js';
import type { Operator } from '../../src/operator/operator.js';
import type { Router } from '../../src/router/router.js';
import type { Backend } from '../../src/tools/backend/server.js';
import { renderBootstrap } from '../../src/xds/bootstrap.js';
import type { XdsPoolView } from '../../src/xds/clients.js';
import type { ResourceMutator } from '../../src/xds/resources.js';
import { demoClient, startBackends, type DemoClient } from './grpc.js';
import { createNamespace, kubeConfig } from './kube.js';
import { createPool, getPool } from './objects.js';
import { startOperator, subscribedRouters } from './operator.js';
import { logDir } from './procs.js';
import { makeServingCert } from './tls.js';
import { routerAccountToken } from './token.js';
import { freePort, waitFor } from './wait.js';
import { EnvoyProcess, GoXdsClient } from './xds.js';

/** What a test reads of the pool's status: data planes, weights pushed, conditions. */
export interface DataPlaneStatus {
  endpoints?: Array<{ address: string; xdsWeight?: number }>;
  dataPlanes?: {
    connected: number;
    byKind: Record<string, number>;
    clients?: Array<{ node: string; kind: string; synced: boolean; acked?: Record<string, string> }>;
  };
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}

export interface FleetOptions {
  prefix: string;
  /** Backends started; the pool lists the first `inPool`. */
  backends: number;
  inPool: number;
  /** The pool's spec besides its endpoints. */
  spec: Record<string, unknown>;
  /** Tests only: change xDS resources before they are encoded (ControlOptions.xdsMutate). */
  mutate?: ResourceMutator;
  envoyBaseId: number;
}

/**
 * A BackendPool `demo` and every data plane of it, real: an operator in this process (control API
 * over TLS) against the test's kube-apiserver; two sibyl routers subscribed with a ServiceAccount
 * token, whose load reports are the fleet's telemetry; an Envoy (envoy-op, with a health listener)
 * and the grpc-go client (go-op), both over TLS with another account's token file.
 */
export class OperatedFleet {
  private constructor(
    readonly ns: string,
    readonly op: Operator,
    readonly backends: Backend[],
    readonly routers: Router[],
    readonly links: ControlClient[],
    readonly envoy: EnvoyProcess,
    /** Envoy's health listener (the chart's probes and Prometheus use it). */
    readonly health: string,
    readonly go: GoXdsClient,
    public envoyClient: DemoClient,
  ) {}

  get key(): string {
    return `${this.ns}/demo`;
  }

  static async start(o: FleetOptions): Promise<OperatedFleet> {
    const tls = makeServingCert();
    const caFile = join(tls.dir, 'ca.crt');
    const ns = await createNamespace(o.prefix);
    const routerToken = await routerAccountToken(ns, 'router');
    const tokenFile = join(logDir, `${ns}-xds.token`);
    writeFileSync(tokenFile, await routerAccountToken(ns, 'envoy'));
    const backends = await startBackends(o.backends);
    await createPool(ns, 'demo', {
      endpoints: backends.slice(0, o.inPool).map((b) => ({ address: b.address })),
      ...o.spec,
    });
    const op = await startOperator(ns, {
      statusIntervalMs: 300,
      control: {
        addr: '127.0.0.1:0',
        tls: { cert: tls.cert, key: tls.key },
        allowedRouters: [`${ns}/router`, `${ns}/envoy`],
        pushIntervalMs: 300,
        reportIntervalMs: 300,
        ...(o.mutate ? { xdsMutate: o.mutate } : {}),
      },
    });
    const port = op.controlPort as number;
    const { routers, links } = await subscribedRouters(['r1', 'r2'], {
      port,
      ca: tls.ca,
      token: routerToken,
      namespace: ns,
    });
    const server = `localhost:${port}`;
    const health = `127.0.0.1:${await freePort()}`;
    const envoy = await EnvoyProcess.create('envoy-op', o.envoyBaseId, {
      server,
      caFile,
      tokenFile,
      nodeId: 'envoy-op',
      health,
    });
    envoy.start();
    const go = new GoXdsClient(
      'go-op',
      `xds:///demo.${ns}`,
      renderBootstrap('grpc', { server, caFile, tokenFile, nodeId: 'go-op' }),
      { GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS: 'true' },
    );
    await envoy.ready();
    const fleet = new OperatedFleet(
      ns,
      op,
      backends,
      routers,
      links,
      envoy,
      health,
      go,
      demoClient(envoy.listen),
    );
    await waitFor(() => links.every((l) => l.version > 0), { what: 'routers to apply a table' });
    await waitFor(async () => Object.keys((await go.batch(30)).backends).length === o.inPool, {
      what: 'grpc-go to route to every backend of the pool',
    });
    return fleet;
  }

  address(i: number): string {
    return (this.backends[i] as Backend).address;
  }

  /** What the ADS server holds of the pool: its clients, the weights pushed, the stock policy. */
  xdsPool(): XdsPoolView | undefined {
    return this.op.control?.xds.pool(this.key);
  }

  weights(): Record<string, number> {
    return Object.fromEntries(this.xdsPool()?.weights ?? []);
  }

  /** Each xDS client's EDS version sent or ACKed, by node id. */
  clientVersions(which: 'sent' | 'acked'): Array<[string, string]> {
    return (this.op.control?.xds.clients() ?? []).map((c) => [c.node, c.types.EDS?.[which] ?? '']);
  }

  async status(): Promise<DataPlaneStatus | undefined> {
    return (await getPool(this.ns, 'demo')).status as DataPlaneStatus | undefined;
  }

  async condition(): Promise<{ status: string; reason: string; message: string } | undefined> {
    return (await this.status())?.conditions?.find((c) => c.type === 'DataPlaneSynced');
  }

  /** The pool lists the first `n` backends. */
  async setEndpoints(n: number): Promise<void> {
    const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    const value = this.backends.slice(0, n).map((b) => ({ address: b.address }));
    await api.patchNamespacedCustomObject(
      {
        group: 'sibyl.dev',
        version: 'v1alpha1',
        namespace: this.ns,
        plural: 'backendpools',
        name: 'demo',
        body: [{ op: 'replace', path: '/spec/endpoints', value }],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
  }

  /** Kills Envoy, waits for its stream to end, starts it again and dials it anew. */
  async restartEnvoy(): Promise<void> {
    await this.envoy.kill();
    await waitFor(() => !this.op.control?.xds.clients().some((c) => c.node === 'envoy-op'), {
      what: 'the stream of the killed Envoy to end',
    });
    this.envoy.start();
    await this.envoy.ready();
    this.envoyClient.close();
    this.envoyClient = demoClient(this.envoy.listen);
  }

  async stop(): Promise<void> {
    this.envoyClient.close();
    await this.go.close();
    await this.envoy.kill();
    for (const l of this.links) l.stop();
    for (const r of this.routers) await r.close();
    await this.op.stop();
    for (const b of this.backends) await b.stop(0);
  }
}

/** Whether xDS version `a` ("N" or "N.M", as the ADS server numbers them) is `b` or later. */
export function atLeast(a: string | undefined, b: string): boolean {
  if (!a) return false;
  const [x, y] = [a, b].map((v) => v.split('.').map(Number)) as [number[], number[]];
  return (x[0] ?? 0) !== (y[0] ?? 0) ? (x[0] ?? 0) > (y[0] ?? 0) : (x[1] ?? 0) >= (y[1] ?? 0);
}
