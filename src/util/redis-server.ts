import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { SibylError } from './errors.js';
import { freePort } from './net.js';

/**
 * A private redis-server on loopback for the demo and the benchmarks (Debian's package, installed by
 * hack/system-deps.sh): no persistence, a free port, stopped with the process that started it.
 */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
  /** Lets this process exit while the server runs on (started with `detached`, e.g. `make demo KEEP=1`). */
  detach(): void;
}

export async function startRedisServer(
  opts: { binary?: string; port?: number; detached?: boolean; timeoutMs?: number } = {},
): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const child: ChildProcess = spawn(
    opts.binary ?? 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore', detached: opts.detached ?? false },
  );
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (e) =>
      reject(
        new SibylError('ERR_PROCESS', `redis-server did not start (run hack/system-deps.sh): ${e.message}`),
      ),
    );
    child.once('exit', (code) =>
      reject(new SibylError('ERR_PROCESS', `redis-server on port ${port} exited at start (status ${code})`)),
    );
  });
  failed.catch(() => undefined); // observed below; a late exit after start is not an error here
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const up = await Promise.race([ping(port), failed]);
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new SibylError('ERR_PROCESS', `redis-server on port ${port} did not answer PING in time`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Not unref'd here: until detach(), the child keeps this process alive, so awaiting stop() works
  // (an unref'd child lets the process exit in the middle of a cleanup that awaits its exit).
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
    detach: () => child.unref(),
  };
}

/** True when something on `port` answers PING with +PONG (RESP inline command). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

export { freePort };
