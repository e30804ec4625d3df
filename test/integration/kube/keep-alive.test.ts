import type { Socket } from 'node:net';
import * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { loadKubeConfig } from '../../../src/kube/config.js';

/**
 * The operator's KubeConfig keeps its API server connections: requests after the first reuse a TLS
 * connection instead of opening one each (what @kubernetes/client-node 1.4 does on its own).
 */
it('reuses one TLS connection for sequential API requests', async () => {
  const kc = loadKubeConfig(process.env.KUBECONFIG);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  await api.listNamespace();
  const context = new k8s.RequestContext(kc.getCurrentCluster()?.server ?? '', k8s.HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  const agent = context.getAgent() as https.Agent;
  expect(agent).toBeInstanceOf(https.Agent);
  const sockets = new Set<Socket>();
  const opened = { n: 0 };
  const create = agent.createConnection.bind(agent) as (...a: unknown[]) => Socket;
  (agent as unknown as { createConnection: (...a: unknown[]) => Socket }).createConnection = (...a) => {
    opened.n++;
    return create(...a);
  };
  agent.on('free', (s: Socket) => sockets.add(s));
  for (let i = 0; i < 10; i++) await api.listNamespace();
  expect(opened.n).toBe(0); // the first request's connection served all ten
  expect(sockets.size).toBe(1);
  // the same agent every time, so a second client of this KubeConfig shares the connection too
  const again = new k8s.RequestContext(kc.getCurrentCluster()?.server ?? '', k8s.HttpMethod.GET);
  await kc.applySecurityAuthentication(again);
  expect(again.getAgent()).toBe(agent);
  kc.closeConnections();
});
