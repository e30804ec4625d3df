import * as http2 from 'node:http2';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { encodeFrame } from '../../../src/grpc/framing.js';
import type { Router } from '../../../src/router/router.js';
import { startRouter } from '../../support/grpc.js';
import { sleep } from '../../support/wait.js';

// What the router sends upstream, frame by frame: a TCP relay between router and backend parses the
// HTTP/2 frames going up. A call that completed must not be followed by RST_STREAM: backends' HTTP/2
// stacks count resets (the "rapid reset" defence, CVE-2023-44487) and answer a run of them with GOAWAY,
// which under load cut the router's connections to grpc-js backends.

const FRAME_TYPES = [
  'DATA',
  'HEADERS',
  'PRIORITY',
  'RST_STREAM',
  'SETTINGS',
  'PUSH_PROMISE',
  'PING',
  'GOAWAY',
  'WINDOW_UPDATE',
  'CONTINUATION',
];
const PREFACE = 24;

/** Counts the frame types in one direction of an HTTP/2 connection (client side: after the preface). */
class FrameCounter {
  readonly counts = new Map<string, number>();
  private buf = Buffer.alloc(0);
  private skip = PREFACE;
  feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.skip > 0) {
      const n = Math.min(this.skip, this.buf.length);
      this.buf = this.buf.subarray(n);
      this.skip -= n;
    }
    while (this.buf.length >= 9) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + length) return;
      const type = FRAME_TYPES[this.buf[3] as number] ?? `type${this.buf[3]}`;
      this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
      this.buf = this.buf.subarray(9 + length);
    }
  }
}

let upstream: http2.Http2Server;
let relay: Server;
let router: Router;
const up = new FrameCounter();
const sockets = new Set<Socket>();

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
  relay = createServer((down) => {
    const to = connect(backendPort, '127.0.0.1');
    sockets.add(down).add(to);
    down.on('data', (c: Buffer) => up.feed(c));
    down.pipe(to).pipe(down);
    const close = () => (down.destroy(), to.destroy());
    down.on('error', close).on('close', close);
    to.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  router = await startRouter([
    {
      name: 'raw',
      match: { services: ['raw.Svc'] },
      endpoints: [{ address: `127.0.0.1:${(relay.address() as AddressInfo).port}` }],
      retries: { maxAttempts: 1 },
    },
  ]);
});

afterAll(async () => {
  await router.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => relay.close(r));
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
    await sleep(50);
    expect(up.counts.get('HEADERS')).toBe(33);
    expect(up.counts.get('RST_STREAM') ?? 0).toBe(0);
  } finally {
    client.close();
  }
});
