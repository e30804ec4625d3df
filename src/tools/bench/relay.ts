import http2 from 'node:http2';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * The floor of a gRPC proxy written on node:http2: a bare relay with round robin over its upstreams and
 * nothing else (no pool matching, limits, breakers, retries, deadlines, cache or metrics). `sibyl bench
 * proxy` runs it beside the router, so the router's figures can be read against what node:http2 itself
 * costs per hop on the same machine in the same run. A benchmark reference only, never a product path:
 * it answers a failed upstream with UNAVAILABLE and does no more.
 *
 * Run: node dist/tools/bench/relay.js --listen 127.0.0.1:0 --upstream HOST:PORT [--upstream …]
 * Prints {"listening":"HOST:PORT"} once it serves.
 */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

function copy(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const k in h) if (k.charCodeAt(0) !== 58 && !HOP.has(k)) out[k] = h[k];
  return out;
}

function startRelay(listen: string, upstreams: string[]): Promise<http2.Http2Server> {
  const sessions = upstreams.map((u) => http2.connect(`http://${u}`));
  for (const s of sessions) s.on('error', () => undefined);
  let next = 0;
  const server = http2.createServer();
  server.on('stream', (down, headers) => {
    const session = sessions[next++ % sessions.length] as http2.ClientHttp2Session;
    const up = session.request({
      ...copy(headers),
      ':method': 'POST',
      ':path': headers[':path'],
      ':authority': headers[':authority'] ?? 'relay',
    });
    let trailers: http2.OutgoingHttpHeaders = { 'grpc-status': '14', 'grpc-message': 'no trailers' };
    down.pipe(up);
    up.on('response', (h) => {
      down.respond({ ...copy(h), ':status': 200 }, { waitForTrailers: true });
      down.once('wantTrailers', () => down.sendTrailers(trailers));
      up.pipe(down);
    });
    up.on('trailers', (t) => (trailers = copy(t)));
    const fail = () => {
      if (down.headersSent || down.destroyed) return down.destroy();
      down.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14' },
        { endStream: true },
      );
    };
    up.on('error', fail);
    down.on('error', () => up.destroy());
    down.on('close', () => up.destroy());
  });
  const [host, port] = [
    listen.slice(0, listen.lastIndexOf(':')),
    Number(listen.slice(listen.lastIndexOf(':') + 1)),
  ];
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', default: '127.0.0.1:0' },
      upstream: { type: 'string', multiple: true },
    },
  });
  const server = await startRelay(values.listen, values.upstream ?? []);
  const a = server.address();
  if (a && typeof a === 'object') console.log(JSON.stringify({ listening: `${a.address}:${a.port}` }));
  process.once('SIGTERM', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(`relay: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
