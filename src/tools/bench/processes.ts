import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../util/errors.js';

/**
 * The benchmarks' child processes (`sibyl backend`, `sibyl router`, nginx, the relay): each keeps its
 * last stderr lines for the error message when it fails, and is stopped with SIGTERM, then SIGKILL.
 */
export interface Child {
  name: string;
  proc: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
  /** Why it could not be started (e.g. not on PATH). */
  spawnError?: string;
}

const HERE = fileURLToPath(import.meta.url);
/** dist/cli/main.js (or src/cli/main.ts under ts-jest): `sibyl` itself. */
const SIBYL_MAIN = path.join(path.dirname(HERE), '..', '..', 'cli', `main${path.extname(HERE)}`);

export function track(name: string, proc: ChildProcess): Child {
  const stderr: string[] = [];
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (d: string) => {
    stderr.push(d);
    if (stderr.length > 50) stderr.shift();
  });
  const child: Child = { name, proc, stderr, exited: Promise.resolve(null) };
  child.exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', (e) => {
      child.spawnError = e.message;
      resolve(-1);
    });
  });
  return child;
}

export async function stop(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  const t = setTimeout(() => c.proc.kill('SIGKILL'), 3000);
  await c.exited;
  clearTimeout(t);
}

/**
 * `node SCRIPT ARGS` (by default `sibyl ARGS`) as a child; resolves once its first stdout line gives
 * {"listening", "metrics"?}.
 */
export async function startSibyl(
  name: string,
  args: string[],
  script = SIBYL_MAIN,
): Promise<{ child: Child; listening: string; metrics: string }> {
  const proc = spawn(process.execPath, [...process.execArgv, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const child = track(name, proc);
  proc.stdout?.setEncoding('utf8');
  const first = await new Promise<{ listening: string; metrics?: string }>((resolve, reject) => {
    let buf = '';
    const fail = (why: string) =>
      reject(new Error(`${name} did not start: ${why}\n${child.stderr.join('').slice(-2000)}`));
    const timer = setTimeout(() => fail('no address within 20s'), 20_000);
    proc.stdout?.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as { listening: string; metrics?: string });
      } catch (e) {
        fail(`unexpected output ${JSON.stringify(buf.slice(0, nl))}: ${errorMessage(e)}`);
      }
    });
    void child.exited.then((code) => {
      clearTimeout(timer);
      fail(`exited with ${code}`);
    });
  });
  return { child, listening: first.listening, metrics: first.metrics ?? '' };
}

/**
 * Writes a router config holding `pools` to `configPath` and starts `sibyl router` on it: listening on
 * a free loopback port, logs at warn, metrics on `metricsAddr` ('' for none).
 */
export async function startRouterWithPools(
  name: string,
  configPath: string,
  pools: readonly object[],
  metricsAddr = '',
): Promise<{ child: Child; listening: string; metrics: string }> {
  await writeFile(configPath, JSON.stringify({ pools }, null, 2));
  return startSibyl(name, [
    'router',
    '--config',
    configPath,
    '--listen',
    '127.0.0.1:0',
    '--metrics-addr',
    metricsAddr,
    '--log-level',
    'warn',
  ]);
}

/**
 * Starts a `sibyl backend` for a benchmark: a fixed service time with no jitter, no slot limit, no
 * reflection, logs at warn, on a free loopback port; `extra` flags go last.
 */
export function startBenchBackend(
  name: string,
  latencyMs: number,
  extra: readonly string[] = [],
): Promise<{ child: Child; listening: string; metrics: string }> {
  return startSibyl(name, [
    'backend',
    '--listen',
    '127.0.0.1:0',
    '--latency-ms',
    String(latencyMs),
    '--jitter',
    '0',
    '--concurrency',
    '0',
    '--no-reflection',
    '--log-level',
    'warn',
    ...extra,
  ]);
}

/**
 * Runs `f` with a list it adds its children to, and stops them all after, whatever happened; if any of
 * them stopped on its own meanwhile, the figures are void and it throws.
 */
export async function withProcesses<T>(f: (children: Child[]) => Promise<T>): Promise<T> {
  const children: Child[] = [];
  try {
    const result = await f(children);
    const dead = children.filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
    if (dead.length > 0) {
      throw new Error(
        `stopped during the runs, so the figures are void: ${dead.map((c) => c.name).join(', ')}`,
      );
    }
    return result;
  } finally {
    await Promise.all(children.map(stop));
  }
}

/**
 * Polls `ready` every `intervalMs` until it returns true; throws `what` after `timeoutMs`, or at once
 * what `ready` throws (a process that exited).
 */
export async function poll(
  ready: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Whether a TCP connection to host:port succeeds. */
export function accepts(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = connect(Number(address.slice(i + 1)), address.slice(0, i));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Waits until `child` accepts connections on 127.0.0.1:port; fails at once if it exits. */
export function waitForPort(port: number, child: Child, timeoutMs = 10_000): Promise<void> {
  return poll(
    async () => {
      if (child.proc.exitCode !== null) throw new Error(`${child.name} exited: ${child.stderr.join('')}`);
      return accepts(`127.0.0.1:${port}`);
    },
    `${child.name} to listen on ${port}`,
    timeoutMs,
  );
}
