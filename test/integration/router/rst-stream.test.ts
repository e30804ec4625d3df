import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { encodeFrame } from '../../../src/grpc/framing.js';
import type { Router } from '../../../src/router/router.js';
import { H2Relay } from '../../support/h2relay.js';
import { startRouter } from '../../support/grpc.js';

// What the router sends upstream, frame by frame: a TCP relay between router and backend parses the
// HTTP/2 frames going up. A call that completed must not be followed by RST_STREAM: backends' HTTP/2
// stacks count resets (the "rapid reset" defence, CVE-2023-44487) and answer a run of them with GOAWAY,
// which under load cut the router's connections to grpc-js backends.

let upstream: http2.Http2Server;
let relay: H2Relay;
let router: Router;

beforeAll(async () => {
  upstream = http2.createServer();
  upstream.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.resume();
    // Answer once the whole request is in: the router's side of the stream is then complete too.
    stream.once('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(encodeFrame(Buffer.from('pong')));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const backendPort = (upstream.address() as AddressInfo).port;
  relay = await H2Relay.start(backendPort);
  router = await startRouter([
    {
      name: 'raw',
      match: { services: ['raw.Svc'] },
      endpoints: [{ address: relay.address }],
      retries: { maxAttempts: 1 },
    },
  ]);
});

afterAll(async () => {
  await router.close();
  await relay.close();
  await new Promise((r) => upstream.close(r));
});

it('sends no RST_STREAM upstream after calls that completed', async () => {
  const client = new grpc.Client(router.address, grpc.credentials.createInsecure());
  const call = () =>
    new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        '/raw.Svc/M',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from('ping'),
        (err) => resolve(err),
      ),
    );
  try {
    const errors = await Promise.all(Array.from({ length: 30 }, call));
    expect(errors.filter(Boolean)).toEqual([]);
    for (let i = 0; i < 3; i++) expect(await call()).toBeNull();
    // One more call on the same connection: its HEADERS reach the relay (they must, for the backend to
    // answer) after any RST_STREAM the router queued for the 33 before it (an HTTP/2 stack sends
    // queued control frames before new HEADERS).
    expect(await call()).toBeNull();
    expect(relay.clientFrames.get('HEADERS')).toBe(34);
    expect(relay.clientFrames.get('RST_STREAM') ?? 0).toBe(0);
  } finally {
    client.close();
  }
});
