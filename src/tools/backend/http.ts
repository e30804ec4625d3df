import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorMessage } from '../../util/errors.js';
import { validatePatch } from './model.js';
import type { BackendMetrics } from './metrics.js';
import type { BackendState } from './state.js';

const MAX_BODY = 64 * 1024;

/**
 * The backend's HTTP side: GET /metrics (Prometheus), GET /healthz, and POST /control, which takes
 * a JSON object of settings ({latencyMs, errorRate, slowdown, pause, ...}) and answers with the
 * settings now in force, so tests and the demo can make a running backend slow or failing.
 */
export function createControlServer(state: BackendState, metrics: BackendMetrics, log: Logger): Server {
  return createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: errorMessage(e), url: req.url }, 'control request failed');
      if (!res.headersSent) send(res, 500, { error: errorMessage(e) });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      const body = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
    } else if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/control' && (req.method === 'POST' || req.method === 'GET')) {
      if (req.method === 'GET') return send(res, 200, state.settings);
      const text = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(text || '{}');
      } catch (e) {
        return send(res, 400, { error: `body is not JSON: ${errorMessage(e)}` });
      }
      const checked = validatePatch(body);
      if ('errors' in checked) return send(res, 400, { error: checked.errors.join('; ') });
      const settings = state.update(checked.patch);
      log.info({ settings }, 'settings changed');
      send(res, 200, settings);
    } else
      send(res, 404, { error: `no ${req.method} ${path}: try GET /metrics, GET /healthz, POST /control` });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new Error(`body larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}
