import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { encodeFrame } from '../../../src/grpc/framing.js';
import { parseGrpcTimeout } from '../../../src/grpc/timeout.js';
import type { Router } from '../../../src/router/router.js';
import { startRouter } from '../../support/grpc.js';
import { waitFor } from '../../support/wait.js';

// The router against a hand-written HTTP/2 upstream, to see exactly what goes over the wire.
type Behaviour = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void;

let upstream: http2.Http2Server;
let router: Router;
let behaviour: Behaviour;
const seen: Array<{ headers: http2.IncomingHttpHeaders; body: Buffer }> = [];

beforeAll(async () => {
  upstream = http2.createServer();
  upstream.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('error', () => undefined);
    stream.on('data', (c: Buffer) => chunks.push(c));
    // Act once the first request bytes are in (or at once for calls that send none).
    const act = () => {
      const body = Buffer.concat(chunks);
      seen.push({ headers, body });
      behaviour(stream, headers, body);
    };
    stream.once('data', () => setImmediate(act));
    stream.once('end', () => chunks.length === 0 && act());
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  router = await startRouter([
    {
      name: 'raw',
      match: { services: ['raw.Svc'] },
      endpoints: [{ address: `127.0.0.1:${port}` }],
      retries: { maxAttempts: 1 },
    },
  ]);
});

afterAll(async () => {
  await router.close();
  await new Promise((r) => upstream.close(r));
});

function unary(
  method: string,
  payload: Buffer,
  options: grpc.CallOptions = {},
  channel: grpc.ChannelOptions = {},
) {
  const client = new grpc.Client(router.address, grpc.credentials.createInsecure(), channel);
  return new Promise<{ err: grpc.ServiceError | null; res?: Buffer; status?: grpc.StatusObject }>(
    (resolve) => {
      let result: { err: grpc.ServiceError | null; res?: Buffer } | undefined;
      let status: grpc.StatusObject | undefined;
      const done = () => {
        if (!result || !status) return;
        client.close();
        resolve({ ...result, status });
      };
      const call = client.makeUnaryRequest(
        method,
        (b: Buffer) => b,
        (b: Buffer) => b,
        payload,
        new grpc.Metadata(),
        options,
        (err, res) => {
          result = { err, res };
          done();
        },
      );
      call.on('status', (s) => {
        status = s;
        done();
      });
    },
  );
}

const ok: Behaviour = (stream) => {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(encodeFrame(Buffer.from('pong')));
};

describe('on the wire', () => {
  it('carries grpc-timeout on, less the time already spent', async () => {
    behaviour = ok;
    seen.length = 0;
    const r = await unary('/raw.Svc/M', Buffer.from('x'), { deadline: Date.now() + 5000 });
    expect(r.err).toBeNull();
    const t = parseGrpcTimeout(String(seen[0]?.headers['grpc-timeout']));
    expect(t).toBeLessThan(5000);
    expect(t).toBeGreaterThan(4000);
    expect(seen[0]?.headers.te).toBe('trailers');
  });

  it('passes compressed messages through untouched (flag and grpc-encoding)', async () => {
    behaviour = ok;
    seen.length = 0;
    const payload = Buffer.alloc(10_000, 'z');
    const r = await unary('/raw.Svc/M', payload, {}, { 'grpc.default_compression_algorithm': 2 });
    expect(r.err).toBeNull();
    expect(seen[0]?.headers['grpc-encoding']).toBe('gzip');
    expect(seen[0]?.headers['grpc-accept-encoding']).toContain('gzip');
    expect(seen[0]?.body[0]).toBe(1);
    expect(seen[0]?.body.length).toBeLessThan(1000);
  });

  it('passes a Trailers-Only response on as Trailers-Only, custom fields included', async () => {
    behaviour = (stream) =>
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '7',
          'grpc-message': 'go%20away',
          'x-why': 'policy',
        },
        { endStream: true },
      );
    const r = await unary('/raw.Svc/M', Buffer.from('x'));
    expect(r.err?.code).toBe(7);
    expect(r.err?.details).toBe('go away');
    expect(r.status?.metadata.get('x-why')).toEqual(['policy']);
  });

  it('maps an upstream that resets the stream after headers to a status', async () => {
    behaviour = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // Once the data is written, destroy() sends RST_STREAM(INTERNAL_ERROR); close(code) after writing
      // would end the stream first.
      stream.write(encodeFrame(Buffer.from('partial')), () => stream.destroy(new Error('boom')));
    };
    const r = await unary('/raw.Svc/M', Buffer.from('x'));
    expect(r.err?.code).toBe(grpc.status.INTERNAL);
    expect(r.err?.details).toContain('reset the stream');
  });

  it('maps an upstream cancel to CANCELLED and REFUSED_STREAM to UNAVAILABLE', async () => {
    behaviour = (stream) => stream.close(http2.constants.NGHTTP2_CANCEL);
    expect((await unary('/raw.Svc/M', Buffer.from('x'))).err?.code).toBe(grpc.status.CANCELLED);
    behaviour = (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    expect((await unary('/raw.Svc/M', Buffer.from('x'))).err?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('answers INTERNAL when the upstream ends without grpc-status, UNKNOWN-ish for non-gRPC answers', async () => {
    behaviour = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(encodeFrame(Buffer.from('no trailers')));
    };
    const r = await unary('/raw.Svc/M', Buffer.from('x'));
    expect(r.err?.code).toBe(grpc.status.INTERNAL);
    expect(r.err?.details).toContain('without grpc-status');
    behaviour = (stream) => {
      stream.respond({ ':status': 503, 'content-type': 'text/html' });
      stream.end('<h1>busy</h1>');
    };
    const busy = await unary('/raw.Svc/M', Buffer.from('x'));
    expect(busy.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(busy.err?.details).toContain('HTTP 503');
  });

  it('answers RESOURCE_EXHAUSTED when the response has a message over the limit', async () => {
    const small = await startRouter(
      [
        {
          name: 'raw',
          match: { services: ['raw.Svc'] },
          endpoints: [{ address: `127.0.0.1:${(upstream.address() as AddressInfo).port}` }],
        },
      ],
      { maxMessageBytes: 1000 },
    );
    try {
      behaviour = (stream) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(encodeFrame(Buffer.alloc(5000)));
      };
      const client = new grpc.Client(small.address, grpc.credentials.createInsecure());
      const err = await new Promise<grpc.ServiceError>((resolve) =>
        client.makeUnaryRequest(
          '/raw.Svc/M',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from('x'),
          (e) => resolve(e as grpc.ServiceError),
        ),
      );
      client.close();
      expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(err.details).toContain('5000 bytes exceeds the limit of 1000');
    } finally {
      await small.close();
    }
  });

  it('cancels the upstream stream when the client goes away', async () => {
    let upstreamClosed: number | undefined;
    behaviour = (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.write(encodeFrame(Buffer.from('first')));
      stream.once('close', () => (upstreamClosed = stream.rstCode));
    };
    const client = new grpc.Client(router.address, grpc.credentials.createInsecure());
    const call = client.makeServerStreamRequest(
      '/raw.Svc/S',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from('x'),
    );
    call.on('error', () => undefined);
    await new Promise((r) => call.once('data', r));
    call.cancel();
    await waitFor(() => upstreamClosed !== undefined, {
      what: 'the upstream stream to close',
      intervalMs: 10,
    });
    client.close();
    expect(upstreamClosed).toBe(http2.constants.NGHTTP2_CANCEL);
  });
});
