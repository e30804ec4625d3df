import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';

/** /healthz (the process answers), /readyz (caller-defined), /metrics (Prometheus text). */
export function startHttp(
  addr: string,
  registry: Registry,
  ready: () => boolean,
  log: Logger,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.end('ok');
    if (path === '/readyz') {
      const ok = ready();
      res.statusCode = ok ? 200 : 503;
      return void res.end(ok ? 'ok' : 'not ready');
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.setHeader('Content-Type', registry.contentType);
          res.end(text);
        },
        (e: unknown) => {
          log.error({ err: errorMessage(e) }, 'metrics failed');
          res.statusCode = 500;
          res.end();
        },
      );
      return;
    }
    res.statusCode = 404;
    res.end('not found');
  });
  const { host, port } = parseAddr(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}

/** ":9090", "127.0.0.1:9090", "[::1]:9090" → host and port (all interfaces when the host is empty). */
export function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host || '0.0.0.0', port: Number(addr.slice(i + 1)) };
}
