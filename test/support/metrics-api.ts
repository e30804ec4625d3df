import { makeServingCert } from '../../src/tools/demo/certs.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { kubeConfig } from './kube.js';
import { waitFor } from './wait.js';

/**
 * A small aggregated API server speaking metrics.k8s.io/v1beta1, for integration tests that need
 * PodMetrics through the real kube-apiserver. metrics-server itself needs kubelets to scrape, which
 * the local control plane has none of, so this server serves figures the test sets.
 *
 * The wire format is metrics-server's: the discovery documents (/apis, /apis/metrics.k8s.io,
 * /apis/metrics.k8s.io/v1beta1) and PodMetrics / PodMetricsList JSON, with Status objects for errors.
 *
 * How kube-apiserver reaches it (registerMetricsApi): an APIService `v1beta1.metrics.k8s.io` whose
 * spec.service names a Service of type ExternalName pointing at `localhost`, with spec.service.port
 * set to this server's port. The aggregator's default service resolver (no
 * --enable-aggregator-routing) turns an ExternalName Service into https://EXTERNALNAME:PORT, so
 * neither a ClusterIP (no kube-proxy here) nor Endpoints (loopback IPs are refused) are needed, and
 * its availability check skips the endpoints test for non-ClusterIP Services. kube-apiserver dials
 * with TLS server name SERVICE.NAMESPACE.svc, which the serving certificate made here carries, and
 * the APIService carries its CA as caBundle (no insecureSkipTLSVerify).
 *
 * Authentication: kube-apiserver proxies with its front-proxy client certificate
 * (--proxy-client-cert-file) and names the caller in X-Remote-User / X-Remote-Group. As a real
 * aggregated server does, this one reads the front-proxy CA and allowed names from the ConfigMap
 * kube-system/extension-apiserver-authentication and trusts those headers only on a connection whose
 * client certificate that CA signed (with an allowed CN); anything else gets 401. It does no
 * authorization (a real server would send a SubjectAccessReview): every authenticated caller may
 * read everything.
 */

export interface ContainerUsage {
  name: string;
  /** Kubernetes quantities, as metrics-server writes them: "250m", "1500000n"; "64Mi", "123456Ki". */
  cpu: string;
  memory: string;
}

export interface FakePodMetrics {
  namespace: string;
  name: string;
  containers: ContainerUsage[];
  labels?: Record<string, string>;
  /** When the figures were taken (default: when they are served). */
  timestamp?: Date;
  /** The averaging window (default "15s", metrics-server's resolution). */
  window?: string;
}

export interface SeenRequest {
  method: string;
  path: string;
  /** X-Remote-User, when the connection's client certificate was a trusted front proxy. */
  user?: string;
  groups: string[];
  /** Whether the client certificate was verified against the front-proxy CA. */
  frontProxy: boolean;
}

export interface MetricsApiServer {
  readonly port: number;
  /** PEM of the CA that signed the serving certificate (the APIService's caBundle). */
  readonly caBundle: Buffer;
  /** Every request served, newest last. */
  readonly requests: readonly SeenRequest[];
  /** Sets (replaces) the figures of one pod. */
  put(pod: FakePodMetrics): void;
  remove(namespace: string, name: string): void;
  close(): Promise<void>;
}

const GROUP = 'metrics.k8s.io';
const VERSION = 'v1beta1';
const GROUP_VERSION = `${GROUP}/${VERSION}`;

interface FrontProxyTrust {
  ca: string;
  allowedNames: string[];
}

/** The front-proxy CA and allowed client names, from where kube-apiserver publishes them. */
export async function readFrontProxyTrust(): Promise<FrontProxyTrust> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const cm = await core.readNamespacedConfigMap({
    namespace: 'kube-system',
    name: 'extension-apiserver-authentication',
  });
  const ca = cm.data?.['requestheader-client-ca-file'];
  if (!ca) {
    throw new Error(
      'kube-apiserver publishes no requestheader-client-ca-file: start it with the front-proxy flags (hack/local-cluster.sh)',
    );
  }
  const names = cm.data?.['requestheader-allowed-names'];
  return { ca, allowedNames: names ? (JSON.parse(names) as string[]) : [] };
}

/** A CA and a serving certificate for the Service's in-cluster name, localhost and 127.0.0.1. */
function makeCert(dnsNames: string[]): { ca: Buffer; cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'sibyl-metrics-api-'));
  try {
    const { ca, cert, key } = makeServingCert(dir, 2, dnsNames);
    return { ca, cert, key };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts the server on 127.0.0.1 (a free port). `service` and `namespace` name the Service the
 * APIService will point at; the serving certificate carries SERVICE.NAMESPACE.svc.
 */
export async function startMetricsApiServer(opts: {
  service: string;
  namespace: string;
  trust?: FrontProxyTrust;
}): Promise<MetricsApiServer> {
  const trust = opts.trust ?? (await readFrontProxyTrust());
  const svcName = `${opts.service}.${opts.namespace}.svc`;
  const tls = makeCert([svcName, `${svcName}.cluster.local`, 'localhost']);
  const pods = new Map<string, FakePodMetrics>(); // "ns/name"
  const requests: SeenRequest[] = [];

  const server: Server = createServer(
    { key: tls.key, cert: tls.cert, ca: trust.ca, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      try {
        handle(req, res);
      } catch (e) {
        sendStatus(res, 500, 'InternalError', (e as Error).message);
      }
    },
  );

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://metrics-api');
    const socket = req.socket as TLSSocket;
    const cn: string | string[] | undefined = socket.authorized
      ? socket.getPeerCertificate().subject?.CN
      : undefined;
    const peerCN = Array.isArray(cn) ? cn[0] : cn;
    const frontProxy =
      peerCN !== undefined && (trust.allowedNames.length === 0 || trust.allowedNames.includes(peerCN));
    // One value per header line: a caller in several groups gets several X-Remote-Group lines.
    const header = (name: string) => req.headersDistinct[name.toLowerCase()] ?? [];
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      user: frontProxy ? header('X-Remote-User')[0] : undefined,
      groups: frontProxy ? header('X-Remote-Group') : [],
      frontProxy,
    };
    requests.push(seen);
    if (requests.length > 1000) requests.splice(0, requests.length - 1000);
    if (!frontProxy) {
      sendStatus(res, 401, 'Unauthorized', 'a client certificate from the front-proxy CA is required');
      return;
    }
    if (req.method !== 'GET') {
      sendStatus(res, 405, 'MethodNotAllowed', `${req.method} is not supported: metrics are read-only`);
      return;
    }
    route(url, res);
  }

  function route(url: URL, res: ServerResponse): void {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const group = {
      name: GROUP,
      versions: [{ groupVersion: GROUP_VERSION, version: VERSION }],
      preferredVersion: { groupVersion: GROUP_VERSION, version: VERSION },
    };
    // kube-apiserver merges aggregated servers' OpenAPI documents; an empty one spares its log an
    // error per sync (metrics-server serves its schemas here).
    if (path === '/openapi/v2') {
      sendJson(res, 200, { swagger: '2.0', info: { title: 'metrics', version: VERSION }, paths: {} });
      return;
    }
    if (path === '/openapi/v3') {
      sendJson(res, 200, { paths: {} });
      return;
    }
    if (path === '/apis') {
      sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] });
      return;
    }
    if (path === `/apis/${GROUP}`) {
      sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...group });
      return;
    }
    if (path === `/apis/${GROUP_VERSION}`) {
      sendJson(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: GROUP_VERSION,
        resources: [
          { name: 'nodes', singularName: '', namespaced: false, kind: 'NodeMetrics', verbs: ['get', 'list'] },
          { name: 'pods', singularName: '', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] },
        ],
      });
      return;
    }
    if (path === `/apis/${GROUP_VERSION}/nodes`) {
      sendJson(res, 200, { kind: 'NodeMetricsList', apiVersion: GROUP_VERSION, metadata: {}, items: [] });
      return;
    }
    if (path === `/apis/${GROUP_VERSION}/pods`) {
      sendList(res, [...pods.values()], url.searchParams.get('labelSelector'));
      return;
    }
    const m = new RegExp(
      `^/apis/${GROUP_VERSION.replace('.', '\\.')}/namespaces/([^/]+)/pods(?:/([^/]+))?$`,
    ).exec(path);
    if (m) {
      const ns = decodeURIComponent(m[1] as string);
      if (m[2] === undefined) {
        const inNs = [...pods.values()].filter((p) => p.namespace === ns);
        sendList(res, inNs, url.searchParams.get('labelSelector'));
        return;
      }
      const name = decodeURIComponent(m[2]);
      const pod = pods.get(`${ns}/${name}`);
      if (pod) sendJson(res, 200, { kind: 'PodMetrics', apiVersion: GROUP_VERSION, ...podJson(pod) });
      else
        sendStatus(res, 404, 'NotFound', `podmetrics.metrics.k8s.io "${name}" not found`, {
          name,
          group: GROUP,
          kind: 'pods',
        });
      return;
    }
    sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
  }

  function sendList(res: ServerResponse, items: FakePodMetrics[], selector: string | null): void {
    const wanted = parseEqualitySelector(selector);
    const chosen = items.filter((p) => [...wanted].every(([k, v]) => p.labels?.[k] === v));
    sendJson(res, 200, {
      kind: 'PodMetricsList',
      apiVersion: GROUP_VERSION,
      metadata: {},
      items: chosen.map(podJson),
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    caBundle: tls.ca,
    requests,
    put(pod) {
      pods.set(`${pod.namespace}/${pod.name}`, pod);
    },
    remove(namespace, name) {
      pods.delete(`${namespace}/${name}`);
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

function podJson(p: FakePodMetrics): object {
  const ts = (p.timestamp ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    metadata: {
      name: p.name,
      namespace: p.namespace,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      labels: p.labels ?? {},
    },
    timestamp: ts,
    window: p.window ?? '15s',
    containers: p.containers.map((c) => ({ name: c.name, usage: { cpu: c.cpu, memory: c.memory } })),
  };
}

/** "a=b,c==d" → {a: b, c: d}; other selector forms are not needed by the tests and are refused. */
function parseEqualitySelector(selector: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!selector) return out;
  for (const part of selector.split(',')) {
    const m = /^\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*$/.exec(part);
    if (!m) throw new Error(`unsupported label selector "${selector}"`);
    out.set(m[1] as string, m[2] as string);
  }
  return out;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function sendStatus(
  res: ServerResponse,
  code: number,
  reason: string,
  message: string,
  details?: object,
): void {
  sendJson(res, code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

export const METRICS_APISERVICE = `${VERSION}.${GROUP}`;

/**
 * Points kube-apiserver at `server`: a Service of type ExternalName (`localhost`) in `namespace`,
 * and the APIService v1beta1.metrics.k8s.io naming it with the server's port and CA. Resolves once
 * the aggregator reports the APIService Available; returns a function that deletes the APIService
 * (cluster-wide: other tests' discovery must not see an unavailable group after this one ends).
 */
export async function registerMetricsApi(
  server: MetricsApiServer,
  opts: { service: string; namespace: string; timeoutMs?: number },
): Promise<() => Promise<void>> {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const reg = kc.makeApiClient(k8s.ApiregistrationV1Api);
  await core.createNamespacedService({
    namespace: opts.namespace,
    body: {
      metadata: { name: opts.service },
      spec: {
        type: 'ExternalName',
        externalName: 'localhost',
        ports: [{ name: 'https', port: server.port, protocol: 'TCP' }],
      },
    },
  });
  const body: k8s.V1APIService = {
    metadata: { name: METRICS_APISERVICE, labels: { 'sibyl.dev/test': 'metrics-api' } },
    spec: {
      group: GROUP,
      version: VERSION,
      service: { name: opts.service, namespace: opts.namespace, port: server.port },
      caBundle: server.caBundle.toString('base64'),
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  };
  try {
    await reg.createAPIService({ body });
  } catch (e) {
    if ((e as { code?: number }).code !== 409) throw e;
    const old = await reg.readAPIService({ name: METRICS_APISERVICE });
    body.metadata = { ...body.metadata, resourceVersion: old.metadata?.resourceVersion };
    await reg.replaceAPIService({ name: METRICS_APISERVICE, body });
  }
  const unregister = async () => {
    try {
      await reg.deleteAPIService({ name: METRICS_APISERVICE });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
  };
  try {
    await waitFor(
      async () => {
        const s = await reg.readAPIService({ name: METRICS_APISERVICE });
        const c = s.status?.conditions?.find((x) => x.type === 'Available');
        if (c?.status === 'True') return true;
        throw new Error(`Available=${c?.status ?? 'unset'} ${c?.reason ?? ''}: ${c?.message ?? ''}`);
      },
      {
        timeoutMs: opts.timeoutMs ?? 30_000,
        intervalMs: 200,
        what: `APIService ${METRICS_APISERVICE} Available`,
      },
    );
  } catch (e) {
    await unregister();
    throw e;
  }
  return unregister;
}
