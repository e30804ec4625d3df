import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import { parseListenAddress } from '../grpc/address.js';

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
  const { host, port } = parseListenAddress(addr, '--metrics-addr');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}
