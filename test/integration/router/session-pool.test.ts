import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import pino from 'pino';
import { DEFAULT_SESSION_POOL, SessionPool } from '../../../src/router/session-pool.js';
import { systemClock, seededRandom } from '../../../src/util/clock.js';
import { freePort, waitFor } from '../../support/wait.js';

// A pool keeps its endpoint's reachability up by itself (gRPC subchannel semantics): losing the last
// session to a dead server starts background connects, whose failures are reported; a server that
// comes back on the same port is found and reported reachable, with no call sent in between.

interface Server {
  close(): Promise<void>;
}

async function serve(port: number): Promise<Server> {
  const server = http2.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    // SIGKILL-like: the port stops listening and every connection is cut without GOAWAY
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

it('reports background connect failures while the server is gone and reachability once it is back', async () => {
  const port = await freePort();
  let server = await serve(port);
  const failures: string[] = [];
  let reachable = 0;
  const pool = new SessionPool(
    `127.0.0.1:${port}`,
    { ...DEFAULT_SESSION_POOL, backoff: { initialMs: 20, maxMs: 100, multiplier: 2, jitter: 0 } },
    {
      clock: systemClock,
      random: seededRandom(1),
      log: pino({ level: 'silent' }),
      events: { reconnectFailed: (why) => failures.push(why), reachable: () => reachable++ },
    },
  );
  try {
    const stream = await pool.openStream({ ':method': 'POST', ':path': '/x' });
    stream.on('error', () => undefined);
    stream.close();
    expect(pool.sessionCount).toBe(1);
    expect(failures).toEqual([]);

    await server.close();
    await waitFor(() => failures.length >= 3, {
      timeoutMs: 20_000,
      what: 'three background connect failures',
    });
    expect(failures[0]).toMatch(/connect failed: .*ECONNREFUSED/);
    expect(reachable).toBe(0);
    expect(pool.sessionCount).toBe(0);

    server = await serve(port);
    await waitFor(() => reachable === 1, { timeoutMs: 20_000, what: 'the pool to find the server back' });
    expect(pool.sessionCount).toBe(1);
    expect(pool.connectable).toBe(true);
  } finally {
    pool.destroy();
    await server.close();
  }
});

it('does not reconnect a session it closed itself, nor after it is closed', async () => {
  const port = await freePort();
  const server = await serve(port);
  let events = 0;
  const pool = new SessionPool(
    `127.0.0.1:${port}`,
    { ...DEFAULT_SESSION_POOL, backoff: { initialMs: 20, maxMs: 100, multiplier: 2, jitter: 0 } },
    {
      clock: systemClock,
      random: seededRandom(1),
      log: pino({ level: 'silent' }),
      events: { reconnectFailed: () => events++, reachable: () => events++ },
    },
  );
  const stream = await pool.openStream({ ':method': 'POST', ':path': '/x' });
  stream.on('error', () => undefined);
  stream.close();
  pool.close();
  await waitFor(() => pool.sessionCount === 0, { timeoutMs: 10_000, what: 'the session to close' });
  await server.close();
  // a reconnect would have been scheduled at once (delay 0) and failed within a backoff step
  await new Promise((r) => setTimeout(r, 200));
  expect(events).toBe(0);
});
