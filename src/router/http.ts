import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import type { RouterMetrics } from './metrics.js';

/** The router's HTTP side: GET /metrics, /healthz (alive), /readyz (has a table and is not draining). */
export function createMetricsServer(metrics: RouterMetrics, ready: () => boolean, log: Logger): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        (e: unknown) => {
          log.error({ err: errorMessage(e) }, 'metrics collection failed');
          res.writeHead(500).end(errorMessage(e));
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics, /healthz or /readyz\n');
    }
  });
}
