import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { track, type Child } from './processes.js';
import type { LoadReport } from './run-result.js';

const HERE = fileURLToPath(import.meta.url);
const LOAD_CLIENT = path.join(path.dirname(HERE), `load-client${path.extname(HERE)}`);

type Line = Record<string, unknown> & { op: string };

/**
 * Drives an open-loop load client in a child process over JSON lines: sibyl-xds-client (grpc-go,
 * test/xds/go-client) or load-client.ts (grpc-js), which speak the same "load" command. `sibyl bench
 * proxy` measures the proxyless clients with them, and each client direct too, so their added latency
 * compares like with like.
 */
export class LoadDriver {
  readonly child: Child;
  private buffer = '';
  private readonly lines: Line[] = [];
  private wake: (() => void) | undefined;

  private constructor(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv) {
    const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child = track(name, proc);
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (d: string) => {
      const parts = (this.buffer + d).split('\n');
      this.buffer = parts.pop() ?? '';
      for (const p of parts) if (p.trim()) this.lines.push(JSON.parse(p) as Line);
      this.wake?.();
    });
    void this.child.exited.then(() => this.wake?.());
  }

  /** sibyl-xds-client at `target` (an address or xds:///NAME); the xDS bootstrap inline. */
  static go(name: string, bin: string, target: string, bootstrap?: string): Promise<LoadDriver> {
    const env = bootstrap ? { GRPC_XDS_BOOTSTRAP_CONFIG: bootstrap } : {};
    return new LoadDriver(name, bin, ['--target', target], env).started();
  }

  /** load-client.ts in a Node process of its own, like `go`. */
  static js(name: string, target: string, bootstrap?: string): Promise<LoadDriver> {
    const env = bootstrap ? { GRPC_XDS_BOOTSTRAP_CONFIG: bootstrap } : {};
    const args = [...process.execArgv, LOAD_CLIENT, '--target', target];
    return new LoadDriver(name, process.execPath, args, env).started();
  }

  private async started(): Promise<this> {
    await this.next('started', 20_000);
    return this;
  }

  private async next(op: string, timeoutMs: number): Promise<Line> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const error = this.lines.find((l) => l.op === 'error');
      if (error) {
        const old = /unknown op load/.test(String(error.error))
          ? ' (a sibyl-xds-client built before the load command: rebuild it with hack/k8s-tools.sh)'
          : '';
        throw new Error(`${this.child.name}: ${String(error.error)}${old}`);
      }
      const i = this.lines.findIndex((l) => l.op === op);
      if (i >= 0) return this.lines.splice(i, 1)[0] as Line;
      const { proc } = this.child;
      if (proc.exitCode !== null || proc.signalCode !== null || this.child.spawnError)
        throw new Error(
          `${this.child.name} exited (${this.child.spawnError ?? proc.exitCode ?? proc.signalCode}): ${this.child.stderr.join('').slice(-2000)}`,
        );
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${this.child.name} did not answer ${op} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** One open-loop run: `rate` calls/s for `seconds`, answered once every call has ended. */
  async load(rate: number, seconds: number): Promise<LoadReport> {
    this.child.proc.stdin?.write(`${JSON.stringify({ op: 'load', rate, seconds })}\n`);
    const r = await this.next('load', (seconds + 60) * 1000);
    return r as unknown as LoadReport;
  }

  /** Closes its stdin (both clients exit then), SIGKILL after 5 s. */
  async close(): Promise<void> {
    const { proc } = this.child;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.stdin?.end();
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await this.child.exited;
    clearTimeout(t);
  }
}
