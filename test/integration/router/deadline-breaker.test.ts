import http2 from 'node:http2';
import { encodeFrame } from '../../../src/grpc/framing.js';
import { metricSum, scrape } from '../../support/load.js';
import {
  controlBackend,
  killAll,
  startBackendProcess,
  startRouterProcess,
  writeRoutes,
} from '../../support/procs.js';

/**
 * A backend that takes calls and never answers, behind calls that carry only the client's own
 * deadline (the pool sets no timeout). A client's clock starts before its request reaches the router,
 * so the client gives up first: here it sends `grpc-timeout: 300m` and resets the stream at 296 ms,
 * as a client 4 ms of network away would. The router ends such a call a little earlier
 * (request-check.ts, deadlineOffsetMs), answers DEADLINE_EXCEEDED itself and counts it against the
 * endpoint, so the black hole's breaker opens; were it to see only the client's reset, a cancellation
 * that says nothing about an endpoint, the black hole would keep its share of the calls for good.
 */
afterAll(killAll);

const CALLS = 30;

/** One Echo call with grpc-timeout 300m, reset by the client at 296 ms; resolves with its grpc-status. */
function call(session: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve) => {
    const s = session.request({
      ':method': 'POST',
      ':path': '/sibyl.demo.v1.Demo/Echo',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '300m',
    });
    let status = 'reset by the client';
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    };
    s.on('response', take);
    s.on('trailers', take);
    s.on('error', () => undefined);
    s.resume();
    const t = setTimeout(() => s.close(http2.constants.NGHTTP2_CANCEL), 296);
    s.on('close', () => {
      clearTimeout(t);
      resolve(status);
    });
    s.end(encodeFrame(new Uint8Array(0)));
  });
}

it('client deadlines alone eject a black-hole backend', async () => {
  const backends = await Promise.all(
    ['dl-b0', 'dl-b1', 'dl-b2'].map((n) => startBackendProcess(n, ['--latency-ms', '2', '--jitter', '0'])),
  );
  const hole = backends[0]!;
  const pool = {
    name: 'demo',
    match: { services: ['sibyl.demo.v1.Demo'] },
    endpoints: backends.map((b) => ({ address: b.info.listening })),
    balancing: { policy: 'RoundRobin' },
    circuitBreaker: {
      failureThreshold: 3,
      recoveryTimeout: '60s',
      halfOpenMaxCalls: 1,
      maxEjectionPercent: 50,
    },
  };
  const router = await startRouterProcess('dl-router', ['--config', writeRoutes('dl', [pool])]);
  await controlBackend(hole, { pause: true });
  const session = http2.connect(`http://${router.info.listening as string}`);
  const statuses: string[] = [];
  try {
    // A few at a time, so the round robin spreads them over all three.
    for (let i = 0; i < CALLS; i += 3)
      statuses.push(...(await Promise.all([call(session), call(session), call(session)])));
  } finally {
    session.close();
  }
  const text = await scrape(router.info.metrics as string);
  const open = metricSum(text, 'sibyl_router_breaker_state', {
    endpoint: hole.info.listening as string,
    state: 'Open',
  });
  const count = (s: string) => statuses.filter((x) => x === s).length;
  // The router ended the black hole's calls itself (DEADLINE_EXCEEDED, 4) and counted them: its breaker
  // opened. (The client may still see its own reset first for some: on a busy machine the router's
  // answer can take longer than the 6 ms margin to arrive; the router counted the call all the same.)
  expect(open).toBe(1);
  expect(count('4') + count('reset by the client')).toBeGreaterThanOrEqual(3);
  // Once it was ejected, calls went to the two others: the last ones all succeeded.
  expect(statuses.slice(-6)).toEqual(Array(6).fill('0'));
});
