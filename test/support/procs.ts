import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/**
 * `sibyl` commands as child processes (node dist/cli/main.js, from the build `make test` makes first),
 * for tests where a process must die for real (SIGKILL) or must be seen to stay up. Each keeps its
 * stderr (pino JSON lines) in memory and in LOGDIR/NAME.log, so a test can read what it logged (breaker
 * transitions, "router subscribed") and a person can read why it failed (SIBYL_KEEP_TEST_STATE=1 keeps them).
 */
const MAIN = join(process.cwd(), 'dist/cli/main.js');
// Inside the run's state folder, which the global teardown removes unless SIBYL_KEEP_TEST_STATE is set.
export const logDir = mkdtempSync(join(process.env.SIBYL_TEST_WORK ?? tmpdir(), 'procs-'));

export interface LogLine {
  msg?: string;
  time?: number;
  level?: number;
  [k: string]: unknown;
}

export class SibylProcess {
  readonly child: ChildProcess;
  /** The first JSON line on stdout (`{"listening": ...}` for backend and router), once it came. */
  info: Record<string, string> = {};
  private readonly lines: LogLine[] = [];
  private stdout = '';
  private stderrTail = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (make test does)`);
    this.child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const file = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => {
      file.write(d);
      const text = this.stderrTail + d.toString();
      const parts = text.split('\n');
      this.stderrTail = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.startsWith('{')) continue;
        try {
          this.lines.push(JSON.parse(p) as LogLine);
        } catch {
          // not JSON: kept in the file only
        }
      }
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        file.end();
        resolve({ code, signal });
      }),
    );
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Log lines (pino JSON on stderr) seen so far, optionally only those whose msg matches. */
  logs(msg?: string | RegExp): LogLine[] {
    if (msg === undefined) return [...this.lines];
    return this.lines.filter((l) =>
      typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg ?? '')),
    );
  }

  async waitForJson(timeoutMs = 30_000): Promise<Record<string, string>> {
    this.info = await waitFor(
      () => {
        if (!this.alive) throw new Error(`${this.name} exited: see ${join(logDir, `${this.name}.log`)}`);
        const line = this.stdout.split('\n').find((l) => l.startsWith('{'));
        return line ? (JSON.parse(line) as Record<string, string>) : undefined;
      },
      { timeoutMs, intervalMs: 25, what: `${this.name} to print its address` },
    );
    return this.info;
  }

  async waitForLog(msg: string | RegExp, timeoutMs = 30_000): Promise<LogLine> {
    return waitFor(
      () => {
        if (!this.alive) throw new Error(`${this.name} exited: see ${join(logDir, `${this.name}.log`)}`);
        return this.logs(msg)[0];
      },
      { timeoutMs, intervalMs: 25, what: `${this.name} to log "${String(msg)}"` },
    );
  }

  /** SIGKILL: no drain, no goodbye, as a crashed process or a killed pod. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    this.child.kill('SIGTERM');
    await this.exited;
    clearTimeout(t);
  }
}

const started: SibylProcess[] = [];

/** Starts `sibyl ARGS`; with json (backend, router) resolves once it printed where it listens. */
export async function startSibyl(
  name: string,
  args: string[],
  opts: { json?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<SibylProcess> {
  const p = new SibylProcess(name, args, { ...process.env, ...opts.env });
  started.push(p);
  if (opts.json !== false) await p.waitForJson(opts.timeoutMs);
  return p;
}

/** `sibyl backend` on LISTEN (default a free port) with a control address for POST /control. */
export function startBackendProcess(name: string, extra: string[] = [], listen = '127.0.0.1:0') {
  return startSibyl(name, [
    'backend',
    '--listen',
    listen,
    '--metrics-addr',
    '127.0.0.1:0',
    '--name',
    name,
    '--log-level',
    'warn',
    ...extra,
  ]);
}

/** Changes a running backend process's settings (its POST /control). */
export async function controlBackend(p: SibylProcess, patch: Record<string, unknown>): Promise<void> {
  const r = await fetch(`http://${p.info.metrics}/control`, {
    method: 'POST',
    body: JSON.stringify(patch),
  });
  if (!r.ok) throw new Error(`${p.name} /control: ${r.status} ${await r.text()}`);
}

/** Every process this file started that still runs, killed (for afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all(started.splice(0).map((p) => p.kill()));
}

/** Writes a routes file (`sibyl router --config`) of these pools; returns its path. */
export function writeRoutes(name: string, pools: unknown[]): string {
  const file = join(logDir, `${name}.routes.json`);
  // JSON is YAML: the router reads either.
  writeFileSync(file, JSON.stringify({ pools }, null, 1));
  return file;
}

/** `sibyl router` on a free port with /metrics, from a routes file or with extra flags (--control ...). */
export function startRouterProcess(name: string, args: string[]): Promise<SibylProcess> {
  return startSibyl(name, [
    'router',
    '--listen',
    '127.0.0.1:0',
    '--metrics-addr',
    '127.0.0.1:0',
    '--drain-grace',
    '1s',
    ...args,
  ]);
}

/**
 * The flags every test operator process with a control API shares: metrics and control on free ports,
 * TLS from `tlsDir` (tls.crt, tls.key), routers of `ns/router` allowed, fast status, pushes and reports.
 */
export function operatorControlArgs(ns: string, tlsDir: string): string[] {
  return [
    '--metrics-addr',
    '127.0.0.1:0',
    '--status-interval',
    '500ms',
    '--control-addr',
    '127.0.0.1:0',
    '--control-cert',
    join(tlsDir, 'tls.crt'),
    '--control-key',
    join(tlsDir, 'tls.key'),
    '--allowed-routers',
    `${ns}/router`,
    '--push-interval',
    '300ms',
    '--report-interval',
    '1s',
  ];
}

/** A router process subscribed to the operator at `control` (host:port), trusting `tlsDir`'s ca.crt. */
export function startSubscribedRouter(
  name: string,
  o: { control: string; tlsDir: string; tokenFile: string; ns: string; id: string },
): Promise<SibylProcess> {
  return startRouterProcess(name, [
    '--control',
    o.control,
    '--control-ca',
    join(o.tlsDir, 'ca.crt'),
    '--token-file',
    o.tokenFile,
    '--namespace',
    o.ns,
    '--router-id',
    o.id,
  ]);
}
