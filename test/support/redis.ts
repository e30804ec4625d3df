import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { waitFor } from './wait.js';

/**
 * A private redis-server on a port of the test's choosing (no persistence), for tests that kill and
 * restart it; the shared one from global-setup must stay up for everyone else.
 */
export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  child.on('error', (e) => {
    throw new Error(`redis-server failed to start (run hack/system-deps.sh): ${e.message}`);
  });
  await waitFor(() => ping(port), { what: `redis on ${port}`, intervalMs: 50 });
  return child;
}

/** Whether a Redis on 127.0.0.1:port answers PING. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.write('PING\r\n');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
    });
    s.once('error', () => resolve(false));
  });
}

/** SIGKILL, and resolves once the process is gone. */
export function killRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
