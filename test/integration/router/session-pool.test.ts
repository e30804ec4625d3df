import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import pino from 'pino';
import {
  DEFAULT_SESSION_POOL,
  SessionPool,
  type SessionPoolEvents,
} from '../../../src/router/session-pool.js';
import { systemClock, seededRandom } from '../../../src/util/clock.js';
import { freePort, waitFor } from '../../support/wait.js';

// A pool keeps its endpoint's reachability up by itself (gRPC subchannel semantics): losing the last
// session to a dead server starts background connects, whose failures are reported; a server that
// comes back on the same port is found and reported reachable, with no call sent in between.

interface Server {
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

async function serve(port: number): Promise<Server> {
  const server = http2.createServer();
  const sockets = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    connections: () => accepted,
    // SIGKILL-like: the port stops listening and every connection is cut without GOAWAY
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A pool to 127.0.0.1:port with a short backoff, reporting to `events`. */
function poolTo(port: number, events: SessionPoolEvents): SessionPool {
  return new SessionPool(
    `127.0.0.1:${port}`,
    { ...DEFAULT_SESSION_POOL, backoff: { initialMs: 20, maxMs: 100, multiplier: 2, jitter: 0 } },
    { clock: systemClock, random: seededRandom(1), log: pino({ level: 'silent' }), events },
  );
}

async function openAndClose(pool: SessionPool): Promise<void> {
  const stream = await pool.openStream({ ':method': 'POST', ':path': '/x' });
  stream.on('error', () => undefined);
  stream.close();
}

it('reports background connect failures while the server is gone and reachability once it is back', async () => {
  const port = await freePort();
  let server = await serve(port);
  const failures: string[] = [];
  let reachable = 0;
  const pool = poolTo(port, { reconnectFailed: (why) => failures.push(why), reachable: () => reachable++ });
  try {
    await openAndClose(pool);
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
  const pool = poolTo(port, { reconnectFailed: () => events++, reachable: () => events++ });
  await openAndClose(pool);
  pool.close();
  await waitFor(() => pool.sessionCount === 0, { timeoutMs: 10_000, what: 'the session to close' });
  // A reconnect would be scheduled at once (delay 0) when the session closed, so it would reach the
  // server before a connection opened after that close: open one and count.
  const probe = poolTo(port, { reconnectFailed: () => undefined, reachable: () => undefined });
  try {
    await openAndClose(probe);
    expect(server.connections()).toBe(2); // the first pool's session and the probe's, no reconnect
    expect(events).toBe(0);
  } finally {
    probe.destroy();
    await server.close();
  }
});
