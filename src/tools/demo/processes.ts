import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The demo's child processes. Each writes stdout to NAME.out and stderr to NAME.log in the log
 * folder, runs in its own process group (so `make demo KEEP=1` can leave them running after the demo
 * exits), and is recorded in pids so `make demo-down` can stop them later.
 */
export class Processes {
  private readonly children: Array<{ name: string; child: ChildProcess }> = [];

  constructor(private readonly logDir: string) {}

  /** Starts `node dist/cli/main.js ARGS`; with waitForJson, resolves with the first JSON line on stdout. */
  async start(
    name: string,
    args: string[],
    opts: { waitForJson?: boolean; timeoutMs?: number } = {},
  ): Promise<Record<string, string>> {
    const main = new URL('../../cli/main.js', import.meta.url).pathname;
    const out = join(this.logDir, `${name}.out`);
    const child = spawn(process.execPath, [main, ...args], {
      stdio: ['ignore', openSync(out, 'w'), openSync(join(this.logDir, `${name}.log`), 'w')],
      detached: true,
      env: { ...process.env, SIBYL_LOG_LEVEL: process.env.SIBYL_LOG_LEVEL ?? 'info' },
    });
    this.children.push({ name, child });
    appendFileSync(join(this.logDir, 'pids'), `${child.pid}\n`);
    if (!opts.waitForJson) return {};
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          return JSON.parse(line) as Record<string, string>;
        } catch {
          // a partial line: read again
        }
      }
      if (child.exitCode !== null)
        throw new Error(`${name} exited with ${child.exitCode}: see ${join(this.logDir, `${name}.log`)}`);
      if (Date.now() > deadline)
        throw new Error(`${name} did not start in time: see ${join(this.logDir, `${name}.log`)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A child started elsewhere (the Envoy), stopped and recorded like the others. */
  adopt(name: string, child: ChildProcess): void {
    this.children.push({ name, child });
    appendFileSync(join(this.logDir, 'pids'), `${child.pid}\n`);
  }

  /** Lets the demo exit while the children run on (KEEP=1). */
  detach(): void {
    for (const { child } of this.children) child.unref();
  }

  async stop(name?: string): Promise<void> {
    const targets = this.children.filter((c) => !name || c.name === name);
    await Promise.all(
      targets.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => (clearTimeout(t), resolve()));
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}

/** What the demo starts: its own CLI, Envoy and redis-server (a recycled pid is left alone). */
const OURS = /dist\/cli\/main\.js|envoy|redis-server/;

/**
 * Stops the processes a previous `make demo KEEP=1` left running from `logDir` (its pids file), so a
 * new demo does not orphan them when it clears the folder. Returns how many it signalled.
 */
export function stopLeftovers(logDir: string): number {
  const file = join(logDir, 'pids');
  if (!existsSync(file)) return 0;
  let n = 0;
  for (const pid of readFileSync(file, 'utf8')
    .split('\n')
    .map(Number)
    .filter((p) => p > 0)) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone already
    }
    if (!OURS.test(cmdline)) continue;
    try {
      process.kill(pid, 'SIGTERM');
      n++;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
  return n;
}
