import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock, Random } from '../../util/clock.js';
import { errorMessage } from '../../util/errors.js';
import { statusName } from '../../grpc/status.js';
import type { BackendMetrics } from './metrics.js';
import type { ClientStreamResponse, EchoRequestOut, EchoResponse, StreamRequestOut } from './messages.js';
import { drawFailure, serviceTimeMs, type CallShape } from './model.js';
import type { LoadSampler } from './orca.js';
import { ORCA_TRAILER, encodeOrcaReport } from '../../grpc/orca.js';
import type { BackendState } from './state.js';

/** What the Demo service needs; everything with a side effect or a source of chance is injected. */
export interface DemoServiceDeps {
  name: string;
  state: BackendState;
  metrics: BackendMetrics;
  clock: Clock;
  random: Random;
  log: Logger;
  /** Present when ORCA reports are on: every call's trailers then carry endpoint-load-metrics-bin. */
  load?: LoadSampler;
}

/** The response header and trailer that tell which backend served a call. */
const BACKEND_HEADER = 'x-sibyl-backend';
/** The largest response payload a request may ask for (response_size). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** What every kind of grpc-js server call has and this service uses. */
interface AnyCall {
  readonly metadata: grpc.Metadata;
  on(event: 'cancelled', listener: () => void): unknown;
}
interface StatusError {
  code: number;
  details: string;
  metadata: grpc.Metadata;
}
class Failed extends Error {
  constructor(
    readonly status: number,
    readonly details: string,
  ) {
    super(details);
  }
}

/** The sibyl.demo.v1.Demo implementation over a BackendState (model + slots). */
export function createDemoService(deps: DemoServiceDeps): grpc.UntypedServiceImplementation {
  const { name, state, clock, random, log, metrics } = deps;

  /** Waits for a slot and spends the call's service time in it; resolves with µs spent. */
  async function serve(shape: CallShape, signal: AbortSignal): Promise<number> {
    const t0 = clock.now();
    await state.whenRunning(signal);
    const release = await state.slots.acquire(signal);
    try {
      const ms = serviceTimeMs(state.settings, shape, random);
      if (ms > 0) await sleep(ms, undefined, { signal });
      await state.whenRunning(signal);
    } finally {
      release();
    }
    return Math.round((clock.now() - t0) * 1000);
  }

  function headers(extra: Record<string, string> = {}, suffix = ''): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(BACKEND_HEADER, name);
    for (const [k, v] of Object.entries(extra)) md.set(`${k}${suffix}`, v);
    return md;
  }

  function requestMetadata(call: AnyCall): Record<string, string> {
    const out: Record<string, string> = {};
    // Binary (-bin) values come back base64-encoded, so tests can see them pass through unchanged.
    for (const [k, v] of Object.entries(call.metadata.getMap()))
      out[k] = typeof v === 'string' ? v : v.toString('base64');
    return out;
  }

  function payloadOf(size: number, echo: Buffer): Buffer {
    if (size <= 0) return echo;
    // response_size is a uint32: unchecked, one request could make this process fill 4 GiB.
    if (size > MAX_RESPONSE_BYTES)
      throw new Error(`response_size ${size} is over the ${MAX_RESPONSE_BYTES} bytes this service makes`);
    const b = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) b[i] = 97 + (i % 26);
    return b;
  }

  /** Trailers with this backend's ORCA load report added (endpoint-load-metrics-bin), when reports are on. */
  function withLoad(md: grpc.Metadata): grpc.Metadata {
    if (!deps.load) return md;
    md.set(
      ORCA_TRAILER,
      encodeOrcaReport({
        cpuUtilization: deps.load.cpu(),
        memUtilization: deps.load.memory(),
        applicationUtilization: state.slots.busyShare,
      }),
    );
    return md;
  }

  function cancellation(call: AnyCall): AbortController {
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort(new Error('call cancelled')));
    return ac;
  }

  /** The status for a call: the request's own failure code, else a draw from the error rate. */
  function failureFor(code: number | undefined, message: string | undefined): Failed | undefined {
    const c = code && code > 0 && code <= 16 ? code : drawFailure(state.settings, random);
    return c ? new Failed(c, message || `${name}: injected ${statusName(c)}`) : undefined;
  }

  function statusError(f: Failed, trailers: grpc.Metadata): StatusError {
    return { code: f.status, details: f.details, metadata: trailers };
  }

  /** Runs a handler body; a cancelled call is only counted, anything unexpected is logged and answered. */
  function run(
    method: string,
    signal: AbortSignal,
    onInternal: (e: StatusError) => void,
    body: () => Promise<number>,
  ) {
    const t0 = clock.now();
    metrics.callStarted(method);
    const handled = (code: number) => {
      metrics.requests.inc({ method, code: String(code) });
      metrics.callHandled(method, code, (clock.now() - t0) / 1000);
    };
    body().then(handled, (e: unknown) => {
      if (signal.aborted) return handled(grpc.status.CANCELLED);
      log.error({ err: errorMessage(e), method }, 'demo handler failed');
      handled(grpc.status.INTERNAL);
      onInternal({ code: grpc.status.INTERNAL, details: errorMessage(e), metadata: headers() });
    });
  }

  async function write(
    call: grpc.ServerWritableStream<unknown, EchoResponse>,
    msg: EchoResponse,
    signal: AbortSignal,
  ) {
    if (!call.write(msg)) await once(call, 'drain', { signal });
  }

  return {
    Echo(
      call: grpc.ServerUnaryCall<EchoRequestOut, EchoResponse>,
      callback: grpc.sendUnaryData<EchoResponse>,
    ) {
      const req = call.request;
      const ac = cancellation(call);
      run(
        'Echo',
        ac.signal,
        (e) => callback(e),
        async () => {
          const micros = await serve(
            { payloadBytes: req.payload.length, latencyOverrideMs: req.latencyMs },
            ac.signal,
          );
          const fail = failureFor(req.failWithCode, req.failMessage);
          const trailers = headers(req.echoMetadata, '-trailer');
          if (fail) {
            callback(statusError(fail, withLoad(trailers)));
            return fail.status;
          }
          call.sendMetadata(headers(req.echoMetadata));
          const payload = payloadOf(req.responseSize, req.payload);
          const res = {
            payload,
            server: name,
            message: req.message,
            index: 0,
            servedMicros: micros,
            requestMetadata: requestMetadata(call),
          };
          callback(null, res, withLoad(trailers));
          return 0;
        },
      );
    },

    ServerStream(call: grpc.ServerWritableStream<StreamRequestOut, EchoResponse>) {
      const req = call.request;
      const ac = cancellation(call);
      const fail = (f: Failed) => call.emit('error', statusError(f, headers()));
      run(
        'ServerStream',
        ac.signal,
        (e) => call.emit('error', e),
        async () => {
          const micros = await serve(
            { payloadBytes: req.payload.length, latencyOverrideMs: req.latencyMs },
            ac.signal,
          );
          const failure = failureFor(req.failWithCode, req.failMessage);
          const count = Math.max(1, req.count);
          if (failure && req.failAfter === 0) {
            fail(failure);
            return failure.status;
          }
          call.sendMetadata(headers());
          const payload = payloadOf(req.responseSize, req.payload);
          const md = requestMetadata(call);
          for (let i = 0; i < count; i++) {
            if (failure && i === req.failAfter) {
              fail(failure);
              return failure.status;
            }
            if (i > 0 && req.sleepMs > 0) await sleep(req.sleepMs, undefined, { signal: ac.signal });
            await write(
              call,
              { payload, server: name, message: '', index: i, servedMicros: micros, requestMetadata: md },
              ac.signal,
            );
          }
          call.end(withLoad(headers()));
          return 0;
        },
      );
    },

    ClientStream(
      call: grpc.ServerReadableStream<EchoRequestOut, ClientStreamResponse>,
      callback: grpc.sendUnaryData<ClientStreamResponse>,
    ) {
      const ac = cancellation(call);
      run(
        'ClientStream',
        ac.signal,
        (e) => callback(e),
        async () => {
          let count = 0;
          let bytes = 0;
          let latency = 0;
          let failCode = 0;
          let failMessage = '';
          const messages: string[] = [];
          for await (const m of call as AsyncIterable<EchoRequestOut>) {
            count++;
            bytes += m.payload.length;
            if (m.message) messages.push(m.message);
            latency ||= m.latencyMs;
            if (!failCode && m.failWithCode) [failCode, failMessage] = [m.failWithCode, m.failMessage];
          }
          await serve({ payloadBytes: bytes, latencyOverrideMs: latency }, ac.signal);
          const fail = failureFor(failCode, failMessage);
          if (fail) {
            callback(statusError(fail, withLoad(headers())));
            return fail.status;
          }
          callback(
            null,
            { server: name, count, totalBytes: bytes, messages: messages.join(',') },
            withLoad(headers()),
          );
          return 0;
        },
      );
    },

    BidiStream(call: grpc.ServerDuplexStream<EchoRequestOut, EchoResponse>) {
      const ac = cancellation(call);
      run(
        'BidiStream',
        ac.signal,
        (e) => call.emit('error', e),
        async () => {
          let index = 0;
          const md = requestMetadata(call);
          // destroyOnReturn false: a for-await that ends would otherwise destroy the duplex before end() sends the status.
          const requests = call.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<EchoRequestOut>;
          for await (const req of requests) {
            const micros = await serve(
              { payloadBytes: req.payload.length, latencyOverrideMs: req.latencyMs },
              ac.signal,
            );
            const fail = failureFor(req.failWithCode, req.failMessage);
            if (fail) {
              call.emit('error', statusError(fail, headers()));
              return fail.status;
            }
            if (index === 0) call.sendMetadata(headers());
            const res = {
              payload: payloadOf(req.responseSize, req.payload),
              server: name,
              message: req.message,
              index: index++,
              servedMicros: micros,
              requestMetadata: md,
            };
            await write(call as unknown as grpc.ServerWritableStream<unknown, EchoResponse>, res, ac.signal);
          }
          call.end(withLoad(headers()));
          return 0;
        },
      );
    },
  };
}
