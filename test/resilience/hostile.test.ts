import * as http2 from 'node:http2';
import * as net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import { demoClientConstructor } from '../../src/tools/backend/proto.js';
import { controlServiceDefinition } from '../../src/control/proto.js';
import { encodeFrame } from '../../src/grpc/framing.js';
import { seededRandom } from '../../src/util/clock.js';
import { demoClient, echo } from '../support/grpc.js';
import { FLAG, FRAME, PREFACE, frame, frameTypes, headerBlock } from '../support/h2frames.js';
import { createNamespace, kubeConfig } from '../support/kube.js';
import { formatCodes } from '../support/load.js';
import {
  killAll,
  logDir,
  startBackendProcess,
  startRouterProcess,
  startSibyl,
  type SibylProcess,
} from '../support/procs.js';
import { makeServingCert } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { runCase } from './report.js';

/**
 * Seeded mutations thrown at a `sibyl router` process (HTTP/2 streams through node:http2, and raw
 * HTTP/2 frames on TCP sockets for what node:http2 will not send) and at a `sibyl operator` process's
 * control API (Subscribe streams carrying mutated RouterMessage protobufs and mutated gRPC frames, with
 * good and bad credentials). Every input must be answered (a gRPC status, RST_STREAM, GOAWAY, or the
 * connection closed; on a raw connection left usable, a PING answered) within a few seconds: every
 * stream carries grpc-timeout 2S, so anything longer is a hang. Both processes must stay up and serve
 * a good call afterwards. The answers are counted and printed.
 */
const SEED = 20_261_128;
const ROUTER_INPUTS = { streams: 6000, raw: 4000 };
const CONTROL_INPUTS = { streams: 2400, frames: 600 };
const ANSWER_MS = 5000;
const MAX_MESSAGE = 1024 * 1024;
const ECHO_PATH = '/sibyl.demo.v1.Demo/Echo';
const SUBSCRIBE_PATH = '/sibyl.v1.RoutingControl/Subscribe';

const random = seededRandom(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

function flip(b: Buffer, bits: number, from = 0): Buffer {
  const c = Buffer.from(b);
  if (c.length <= from) return c;
  for (let i = 0; i < bits; i++) {
    const j = from * 8 + int((c.length - from) * 8);
    c[j >> 3] = (c[j >> 3] as number) ^ (1 << (j & 7));
  }
  return c;
}

class Tally {
  readonly counts = new Map<string, number>();
  add(k: string): void {
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }
  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  get(k: string): number {
    return this.counts.get(k) ?? 0;
  }
  text(): string {
    return formatCodes(Object.fromEntries(this.counts));
  }
}

async function inBatches<T>(items: T[], size: number, f: (t: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(f));
}

// ---- HTTP/2 streams through node:http2 -------------------------------------------------------------

interface StreamInput {
  headers: http2.OutgoingHttpHeaders;
  body?: Buffer;
  /** Send only this many bytes of the body, then reset the stream. */
  cutAt?: number;
  /** Reset the stream (CANCEL) this long after sending. */
  resetAfterMs?: number;
}

/** Sessions to one authority, replaced when the server closes one (GOAWAY after a protocol error). */
class Sessions {
  private readonly list: Array<http2.ClientHttp2Session | undefined>;
  private next = 0;
  constructor(
    private readonly url: string,
    n: number,
    private readonly options: http2.SecureClientSessionOptions = {},
  ) {
    this.list = Array.from({ length: n }, () => undefined);
  }
  get(): http2.ClientHttp2Session {
    const i = this.next++ % this.list.length;
    let s = this.list[i];
    if (!s || s.closed || s.destroyed) {
      s = http2.connect(this.url, this.options);
      s.on('error', () => undefined);
      this.list[i] = s;
    }
    return s;
  }
  close(): void {
    for (const s of this.list) s?.destroy();
  }
}

/** One stream; resolves with how it was answered. */
function sendStream(sessions: Sessions, path: string, input: StreamInput): Promise<string> {
  return new Promise((resolve) => {
    const session = sessions.get();
    let status: string | undefined;
    let goaway = false;
    const onGoaway = () => (goaway = true);
    session.once('goaway', onGoaway);
    let st: http2.ClientHttp2Stream;
    try {
      st = session.request(
        {
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': '2S',
          ...input.headers,
        },
        { endStream: input.body === undefined && input.resetAfterMs === undefined },
      );
    } catch (e) {
      session.off('goaway', onGoaway);
      return resolve(`refused by node:http2 (${(e as { code?: string }).code ?? 'error'})`);
    }
    let resetByUs = false;
    const timer = setTimeout(() => {
      st.close(http2.constants.NGHTTP2_CANCEL);
      resolve('hang');
    }, ANSWER_MS);
    st.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status ??= String(h['grpc-status']);
      else if (h[':status'] !== 200) status ??= `HTTP ${h[':status']}`;
    });
    st.on('trailers', (t) => (status ??= String(t['grpc-status'])));
    st.on('error', () => undefined);
    st.resume();
    st.on('close', () => {
      clearTimeout(timer);
      session.off('goaway', onGoaway);
      const code = status === undefined ? undefined : Number(status);
      if (code !== undefined && Number.isInteger(code)) resolve(grpc.status[code] ?? `grpc-status ${status}`);
      else if (status !== undefined) resolve(status);
      else if (resetByUs) resolve('reset by the client (no answer due)');
      else if (st.rstCode && st.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
        resolve(`RST_STREAM ${st.rstCode}`);
      else if (goaway) resolve('GOAWAY');
      else resolve('closed without a status');
    });
    const reset = () => {
      if (status === undefined) resetByUs = true;
      st.close(http2.constants.NGHTTP2_CANCEL);
    };
    if (input.body !== undefined) {
      if (input.cutAt !== undefined) {
        st.write(input.body.subarray(0, input.cutAt));
        setTimeout(reset, int(10));
      } else st.end(input.body);
    }
    if (input.resetAfterMs !== undefined) setTimeout(reset, input.resetAfterMs);
  });
}

const echoRequest = demoClientConstructor().service.Echo?.requestSerialize as (m: object) => Buffer;

/** A mutated Echo call: its frame, its headers, or when it is reset. */
function routerStreamInput(): StreamInput {
  const msg = echoRequest({ message: `hostile ${int(1e6)}`, responseSize: 16 });
  const good = encodeFrame(msg);
  const k = int(21);
  switch (k) {
    case 0:
      return { headers: {}, body: flip(good, 1 + int(8), good.length - 8) }; // bits of the text
    case 1:
      return { headers: {}, body: flip(good, 1 + int(3)) }; // anywhere (the backend caps response_size)
    case 2:
      return { headers: {}, body: good.subarray(0, good.length - 1 - int(good.length - 1)) }; // truncated
    case 3: {
      const b = Buffer.from(good);
      b.writeUInt32BE(msg.length + 1 + int(1000), 1); // longer than the body
      return { headers: {}, body: b };
    }
    case 4: {
      const b = Buffer.alloc(5);
      b.writeUInt32BE(MAX_MESSAGE + 1 + int(2 ** 31), 1); // over the limit
      return { headers: {}, body: b };
    }
    case 5:
      return { headers: {}, body: Buffer.concat([Buffer.from([1]), good.subarray(1)]) }; // compressed, no encoding
    case 6:
      return { headers: {}, body: Buffer.concat([Buffer.from([2 + int(254)]), good.subarray(1)]) }; // bad flag
    case 7:
      return { headers: {}, body: Buffer.concat([good, good]) }; // two messages on a unary call
    case 8:
      return { headers: {}, body: Buffer.alloc(0) }; // no message
    case 9:
      return {
        headers: { 'grpc-encoding': 'gzip' },
        body: Buffer.concat([Buffer.from([1]), good.subarray(1)]),
      };
    case 10:
      return { headers: { 'grpc-encoding': pick(['snappy', 'x', 'identity,gzip', '']) }, body: good };
    case 11:
      return {
        headers: {
          'grpc-timeout': pick(['1', 'S', '-1S', '123456789S', '1.5S', '1x', 'abc', '99999999H', '0n']),
        },
        body: good,
      };
    case 12:
      return {
        headers: {
          'content-type': pick([
            'text/plain',
            'application/json',
            'application/grpcx',
            'grpc',
            'application/grpc+',
          ]),
        },
        body: good,
      };
    case 13:
      return {
        headers: {
          ':path': pick([
            '/',
            '/x',
            '/a/b/c',
            '/sibyl.demo.v1.Demo/',
            '//M',
            '/other.Svc/M',
            '/%00/%01',
            '*',
          ]),
        },
        body: good,
      };
    case 14:
      return { headers: { ':method': pick(['GET', 'PUT', 'DELETE', 'OPTIONS']) }, body: good };
    case 15:
      return {
        headers: {
          'x-sibyl-priority': bytes(8).toString('hex'),
          'x-sibyl-cache': pick(['refresh', 'nope', '']),
        },
        body: good,
      };
    case 16:
      return { headers: { 'x-big': 'a'.repeat(8000 + int(40_000)) }, body: good };
    case 17: {
      const many: http2.OutgoingHttpHeaders = {};
      for (let i = 0; i < 50 + int(200); i++) many[`x-h${i}`] = bytes(4).toString('hex');
      return { headers: many, body: good };
    }
    case 18:
      return { headers: { 'x-weird-bin': pick(['!!!', '====', 'AAAA*']) }, body: good };
    case 19:
      return { headers: {}, body: good, cutAt: int(good.length) }; // reset mid-body
    default:
      return { headers: {}, resetAfterMs: int(15), ...(random() < 0.5 ? { body: good } : {}) }; // reset at an odd moment
  }
}

// ---- raw HTTP/2 frames on TCP ------------------------------------------------------------------------

const baseHeaders = (): Array<[string, string]> => [
  [':method', 'POST'],
  [':scheme', 'http'],
  [':path', ECHO_PATH],
  [':authority', 'router'],
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
  ['grpc-timeout', '1S'],
];

/** A connection's bytes after the preface: a mutated request, or frames no client may send. */
function rawInput(): Buffer {
  const body = encodeFrame(echoRequest({ message: 'raw' }));
  const h = baseHeaders();
  const req = (hs: Array<[string, string]>, stream = 1) =>
    Buffer.concat([
      frame(FRAME.HEADERS, FLAG.END_HEADERS, stream, headerBlock(hs)),
      frame(FRAME.DATA, FLAG.END_STREAM, stream, body),
    ]);
  const k = int(24);
  switch (k) {
    case 0:
      return req(h.filter(([n]) => n !== ':path')); // missing pseudo-header
    case 1:
      return req([...h, [':method', 'GET']]); // duplicate pseudo-header
    case 2:
      return req([...h, [':foo', 'bar']]); // unknown pseudo-header
    case 3:
      return req([...h.slice(4), ...h.slice(0, 4)]); // pseudo-headers after regular ones
    case 4:
      return req([...h, ['Content-Length', '5']]); // upper-case name
    case 5:
      return req([
        ...h,
        pick([
          ['connection', 'keep-alive'],
          ['keep-alive', '5'],
          ['transfer-encoding', 'chunked'],
          ['upgrade', 'h2c'],
        ] as Array<[string, string]>),
      ]);
    case 6:
      return req(h, 0); // HEADERS on stream 0
    case 7:
      return req(h, 2); // client stream id must be odd
    case 8:
      return Buffer.concat([req(h, 3), req(h, 1)]); // stream ids going backwards
    case 9:
      return frame(FRAME.DATA, FLAG.END_STREAM, pick([0, 5]), body); // DATA on stream 0 or an idle stream
    case 10:
      return Buffer.concat([
        frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(h)),
        frame(FRAME.DATA, 0, 1, bytes(20_000)),
      ]); // over max frame size
    case 11:
      return frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, headerBlock(h)); // CONTINUATION with no HEADERS
    case 12:
      return Buffer.concat([frame(FRAME.HEADERS, 0, 1, headerBlock(h)), frame(FRAME.DATA, 0, 1, body)]); // headers never ended
    case 13:
      return frame(FRAME.WINDOW_UPDATE, 0, pick([0, 1]), Buffer.alloc(4)); // zero increment
    case 14:
      return frame(FRAME.SETTINGS, 0, 0, bytes(1 + int(5))); // length not a multiple of 6
    case 15: {
      const p = Buffer.alloc(6);
      p.writeUInt16BE(pick([2, 4, 5]), 0); // ENABLE_PUSH 2, INITIAL_WINDOW_SIZE / MAX_FRAME_SIZE out of range
      p.writeUInt32BE(pick([2, 2 ** 31, 0xffffffff, 100]), 2);
      return frame(FRAME.SETTINGS, 0, 0, p);
    }
    case 16:
      return frame(FRAME.PING, 0, 0, bytes(pick([0, 7, 9]))); // PING of the wrong length
    case 17:
      return frame(FRAME.RST_STREAM, 0, pick([0, 7]), Buffer.alloc(4)); // RST on stream 0 or an idle one
    case 18: {
      const block = headerBlock(h);
      return frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS | FLAG.PADDED,
        1,
        Buffer.concat([Buffer.from([block.length + 10]), block]),
      ); // pad longer than the frame
    }
    case 19:
      return frame(
        FRAME.PUSH_PROMISE,
        FLAG.END_HEADERS,
        1,
        Buffer.concat([Buffer.alloc(4, 0), headerBlock(h)]),
      ); // clients may not push
    case 20: {
      const g = Buffer.alloc(8);
      return Buffer.concat([frame(FRAME.GOAWAY, 0, 0, g), req(h, 1)]); // GOAWAY, then a request anyway
    }
    case 21:
      return Buffer.concat([
        frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, bytes(1 + int(60))),
        frame(FRAME.DATA, FLAG.END_STREAM, 1, body),
      ]); // garbage HPACK
    case 22: {
      const out = [];
      for (let i = 0; i < 1 + int(5); i++) out.push(frame(int(13), int(256), int(8), bytes(int(64))));
      return Buffer.concat(out); // random frames
    }
    default:
      return flip(req(h), 1 + int(6)); // bit flips anywhere in a good request
  }
}

/** One raw connection: preface, SETTINGS (and an ACK of the server's), the input, then a PING probe. */
function sendRaw(port: number, input: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (what: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => {
      console.log(`[hostile] raw input unanswered: ${input.subarray(0, 80).toString('hex')}`);
      finish('hang');
    }, ANSWER_MS);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const frames = frameTypes(got);
      const goaway = frames.find((f) => f.type === FRAME.GOAWAY);
      if (goaway)
        return finish(`GOAWAY ${goaway.payload.length >= 8 ? goaway.payload.readUInt32BE(4) : '?'}`);
      const rst = frames.find((f) => f.type === FRAME.RST_STREAM);
      if (rst) return finish(`RST_STREAM ${rst.payload.length >= 4 ? rst.payload.readUInt32BE(0) : '?'}`);
      if (frames.some((f) => f.type === FRAME.HEADERS && f.stream !== 0)) return finish('response HEADERS');
      if (
        frames.some((f) => f.type === FRAME.PING && f.flags & FLAG.ACK && f.payload.toString() === 'probe!!!')
      )
        return finish('still usable (PING answered)');
    });
    s.on('close', () => finish('connection closed'));
    // A frame whose length runs past the bytes sent (a flipped length bit) leaves the server waiting for
    // the rest, rightly: no answer is due then, and the connection's idle timeout will close it.
    const complete = frameTypes(input).reduce((n, f) => n + 9 + f.payload.length, 0) === input.length;
    if (!complete) {
      clearTimeout(timer);
      setTimeout(() => finish('incomplete frame sent: the server waits for the rest'), 1000);
    }
    s.write(
      Buffer.concat([
        PREFACE,
        frame(FRAME.SETTINGS, 0, 0),
        frame(FRAME.SETTINGS, FLAG.ACK, 0),
        input,
        frame(FRAME.PING, 0, 0, Buffer.from('probe!!!')),
      ]),
    );
  });
}

// ---- the control API ---------------------------------------------------------------------------------

const control = controlServiceDefinition().Subscribe as grpc.MethodDefinition<object, object>;
const routerMessage = (m: object) => control.requestSerialize(m);

/** Valid RouterMessages of every kind, to mutate. */
function routerMessages(ns: string): Buffer[] {
  return [
    routerMessage({ hello: { routerId: 'fuzz', namespace: ns, version: 'x', routingVersion: 3 } }),
    routerMessage({ ack: { routingVersion: 1 } }),
    routerMessage({ nack: { routingVersion: 1, error: 'no' } }),
    routerMessage({
      load: {
        routerId: 'fuzz',
        routingVersion: 1,
        intervalMs: 1000,
        endpoints: [
          {
            pool: `${ns}/p`,
            address: 'backend-1.localhost:50051',
            calls: 10,
            errors: { '14': 2 },
            latencyBoundsMs: [1, 5, 10],
            latencyCounts: [3, 4, 2, 1],
            inflight: 2,
            breaker: 'Closed',
            concurrencyLimit: 8,
          },
        ],
      },
    }),
  ];
}

function mutateMessage(base: Buffer[]): Buffer {
  const m = pick(base);
  switch (int(6)) {
    case 0:
      return flip(m, 1 + int(8));
    case 1:
      return m.subarray(0, int(m.length));
    case 2:
      return bytes(1 + int(80));
    case 3:
      return Buffer.concat([m, bytes(1 + int(20))]);
    case 4:
      return Buffer.concat([m, pick(base)]); // two oneof members at once
    default:
      return Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]); // an over-long varint
  }
}

type Raw = grpc.ClientDuplexStream<Buffer, Buffer>;

function sendControl(client: grpc.Client, auth: string | undefined, messages: Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    if (auth !== undefined) md.set('authorization', auth);
    const call = client.makeBidiStreamRequest(
      SUBSCRIBE_PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      md,
      { deadline: Date.now() + 3000 },
    ) as Raw;
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    call.on('status', (s) =>
      resolve(s.code === grpc.status.DEADLINE_EXCEEDED ? 'hang' : (grpc.status[s.code] ?? String(s.code))),
    );
    for (const m of messages) call.write(m);
    call.end();
  });
}

// ---- the case ------------------------------------------------------------------------------------------

afterAll(killAll);

it('hostile input at the router and at the control API: every input answered, both processes up', async () => {
  await runCase('hostile', async (r) => {
    const backends = await Promise.all(
      [0, 1].map((i) => startBackendProcess(`hostile-b${i}`, ['--latency-ms', '1', '--jitter', '0'])),
    );
    const routes = join(logDir, 'hostile.routes.json');
    writeFileSync(
      routes,
      JSON.stringify({
        pools: [
          {
            name: 'demo',
            match: { services: ['sibyl.demo.v1.Demo'] },
            endpoints: backends.map((b) => ({ address: b.info.listening })),
            balancing: { policy: 'RoundRobin' },
          },
        ],
      }),
    );
    const router = await startRouterProcess('hostile-router', [
      '--config',
      routes,
      '--max-message-bytes',
      String(MAX_MESSAGE),
      '--log-level',
      'warn',
    ]);
    const routerPort = Number((router.info.listening as string).split(':').pop());

    // The operator and its control API, with a router account allowed and one that is not.
    const ns = await createNamespace('hostile');
    const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
    const tokenOf = async (sa: string) => {
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
      return (
        await core.createNamespacedServiceAccountToken({
          name: sa,
          namespace: ns,
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        })
      ).status?.token as string;
    };
    const [good, intruder] = await Promise.all([tokenOf('router'), tokenOf('intruder')]);
    const tls = makeServingCert();
    const op: SibylProcess = await startSibyl(
      'hostile-operator',
      [
        'operator',
        '--kubeconfig',
        process.env.KUBECONFIG as string,
        '--namespace',
        ns,
        '--leader-elect',
        'false',
        '--metrics-addr',
        '127.0.0.1:0',
        '--control-addr',
        '127.0.0.1:0',
        '--control-cert',
        join(tls.dir, 'tls.crt'),
        '--control-key',
        join(tls.dir, 'tls.key'),
        '--allowed-routers',
        `${ns}/router`,
      ],
      { json: false },
    );
    const started = await op.waitForLog('operator started', 60_000);
    const controlAddr = `localhost:${started.controlPort}`;
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${started.metricsPort}/readyz`)).status === 200,
      {
        what: 'the operator to be ready',
      },
    );

    // At the router: HTTP/2 streams, then raw connections.
    const t0 = Date.now();
    const streams = new Tally();
    const sessions = new Sessions(`http://${router.info.listening}`, 8);
    const inputs = Array.from({ length: ROUTER_INPUTS.streams }, routerStreamInput);
    await inBatches(inputs, 100, async (i) => streams.add(await sendStream(sessions, ECHO_PATH, i)));
    sessions.close();
    const raw = new Tally();
    const rawInputs = Array.from({ length: ROUTER_INPUTS.raw }, rawInput);
    await inBatches(rawInputs, 50, async (i) => raw.add(await sendRaw(routerPort, i)));
    const routerMs = Date.now() - t0;
    const routerAfter = demoClient(router.info.listening as string);
    const goodCall = await echo(routerAfter, { message: 'after' }, { deadlineMs: 5000 });
    routerAfter.close();

    // At the control API: Subscribe streams with mutated messages and various credentials, and
    // mutated gRPC frames.
    const t1 = Date.now();
    const base = routerMessages(ns);
    const ctl = new Tally();
    const client = new grpc.Client(controlAddr, grpc.credentials.createSsl(tls.ca));
    const badTokens = Array.from({ length: 20 }, () => bytes(24).toString('base64url'));
    const controlInputs = Array.from({ length: CONTROL_INPUTS.streams }, () => {
      const a = int(10);
      const auth =
        a === 0
          ? undefined
          : a === 1
            ? `Bearer ${pick(badTokens)}`
            : a === 2
              ? pick(['Basic dXNlcjpwYXNz', 'Bearer', `bearer  ${good} extra`, good])
              : a === 3
                ? `Bearer ${intruder}`
                : `Bearer ${good}`;
      const msgs = random() < 0.5 ? [base[0] as Buffer] : [];
      for (let i = 0; i < 1 + int(3); i++) msgs.push(mutateMessage(base));
      return { auth, msgs };
    });
    await inBatches(controlInputs, 50, async (i) => ctl.add(await sendControl(client, i.auth, i.msgs)));
    const frames = new Tally();
    const ctlSessions = new Sessions(`https://${controlAddr}`, 4, { ca: tls.ca });
    const frameInputs = Array.from({ length: CONTROL_INPUTS.frames }, (): StreamInput => {
      const m = encodeFrame(mutateMessage(base));
      const headers = { authorization: `Bearer ${good}` };
      switch (int(5)) {
        case 0:
          return { headers, body: Buffer.concat([Buffer.from([2 + int(254)]), m.subarray(1)]) };
        case 1: {
          const b = Buffer.from(m);
          b.writeUInt32BE(4 * 1024 * 1024 + 1 + int(2 ** 30), 1);
          return { headers, body: b };
        }
        case 2:
          return { headers, body: m.subarray(0, int(m.length)) };
        case 3:
          return {
            headers: { ...headers, 'grpc-encoding': 'gzip' },
            body: Buffer.concat([Buffer.from([1]), m.subarray(1)]),
          };
        default:
          return { headers: { ...headers, 'grpc-timeout': pick(['x', '1', '-5m']) }, body: m };
      }
    });
    await inBatches(frameInputs, 50, async (i) =>
      frames.add(await sendStream(ctlSessions, SUBSCRIBE_PATH, i)),
    );
    ctlSessions.close();
    const controlMs = Date.now() - t1;
    // A good subscriber afterwards gets its snapshot.
    const snapshot = await new Promise<boolean>((resolve) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${good}`);
      const call = client.makeBidiStreamRequest(
        SUBSCRIBE_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        md,
        {
          deadline: Date.now() + 5000,
        },
      ) as Raw;
      call.on('data', () => {
        resolve(true);
        call.cancel();
      });
      call.on('error', () => resolve(false));
      call.write(base[0] as Buffer);
    });
    client.close();

    const errorsLogged = (p: SibylProcess) => p.logs().filter((l) => (l.level ?? 0) >= 50).length;
    const routerTotal = streams.total + raw.total;
    const controlTotal = ctl.total + frames.total;
    r.figure('seed', SEED);
    r.figure('router: HTTP/2 streams (node:http2)', `${streams.total}: ${streams.text()}`);
    r.figure('router: raw HTTP/2 connections', `${raw.total}: ${raw.text()}`);
    r.figure('time at the router', `${(routerMs / 1000).toFixed(1)} s for both kinds`);
    r.figure(
      'control API: Subscribe streams (mutated RouterMessages, good and bad credentials)',
      `${ctl.total}: ${ctl.text()}`,
    );
    r.figure(
      'control API: mutated gRPC frames on Subscribe',
      `${frames.total} (${(controlMs / 1000).toFixed(0)} s for both): ${frames.text()}`,
    );
    r.figure('error-level log lines', `router ${errorsLogged(router)}, operator ${errorsLogged(op)}`);

    const hangs = streams.get('hang') + raw.get('hang') + ctl.get('hang') + frames.get('hang');
    const silent = streams.get('closed without a status') + frames.get('closed without a status');
    r.check('mutated inputs at the router', '≥ 10,000', routerTotal, routerTotal >= 10_000);
    r.check('mutated inputs at the control API', '≥ 2,000', controlTotal, controlTotal >= 2000);
    r.check('inputs left unanswered past their deadline', '0', hangs, hangs === 0);
    r.check('streams closed with no status, RST or GOAWAY', '0', silent, silent === 0);
    r.check(
      'router up and serving afterwards',
      'alive; a good call OK',
      `${router.alive ? 'alive' : 'DEAD'}; ${grpc.status[goodCall.status.code]}`,
      router.alive && goodCall.status.code === grpc.status.OK,
    );
    r.check(
      'operator up and serving afterwards',
      'alive; a good subscriber gets its snapshot',
      `${op.alive ? 'alive' : 'DEAD'}; ${snapshot ? 'snapshot received' : 'no snapshot'}`,
      op.alive && snapshot,
    );
  });
});
