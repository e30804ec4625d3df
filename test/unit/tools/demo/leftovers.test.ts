import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopLeftovers } from '../../../../src/tools/demo/processes.js';

/** `make demo` after `make demo KEEP=1`: the earlier run's processes are stopped, nothing else is. */

const exited = (c: ChildProcess) =>
  new Promise<NodeJS.Signals | null>((r) =>
    c.exitCode !== null || c.signalCode !== null ? r(c.signalCode) : c.once('exit', (_code, sig) => r(sig)),
  );

it('signals the pids a kept demo recorded that are its own processes, and leaves a recycled pid alone', async () => {
  // A demo child (its command line names the CLI) and an unrelated process whose pid is in the file.
  const ours = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'dist/cli/main.js'], {
    stdio: 'ignore',
  });
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const dir = mkdtempSync(join(tmpdir(), 'sibyl-demo-left-'));
    writeFileSync(join(dir, 'pids'), `${ours.pid}\n${other.pid}\n999999999\n`);
    expect(stopLeftovers(dir)).toBe(1);
    expect(await exited(ours)).toBe('SIGTERM');
    expect(other.exitCode).toBeNull();
    expect(other.signalCode).toBeNull();
    expect(stopLeftovers(join(dir, 'none'))).toBe(0); // no pids file: nothing to do
  } finally {
    ours.kill('SIGKILL');
    other.kill('SIGKILL');
  }
});
