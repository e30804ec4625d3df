import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A process's CPU time so far (user + system, seconds) and resident memory (MiB), from /proc (Linux). */
interface ProcUsage {
  readonly cpuSec: number;
  readonly rssMiB: number;
}

let ticks: number | undefined;

/** Clock ticks per second, the unit of /proc/PID/stat's utime and stime (proc(5)). */
function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

function procUsage(pid: number): ProcUsage {
  // Fields after the command name, which is in parentheses and may hold spaces: state is field 3,
  // utime 14 and stime 15 (proc(5)).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuSec: cpuTicks / clockTicks(), rssMiB: rssKiB / 1024 };
}

/**
 * Samples a process over a window: its CPU as a share of one core between start and stop, and its
 * resident memory at the end and the most seen (sampled each `everyMs`).
 */
export function watchUsage(
  pid: number,
  everyMs = 1000,
): { stop(): { cpuShare: number; rssMiB: number; maxRssMiB: number } } {
  const t0 = performance.now();
  const u0 = procUsage(pid);
  let max = u0.rssMiB;
  const timer = setInterval(() => (max = Math.max(max, procUsage(pid).rssMiB)), everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      const u = procUsage(pid);
      const sec = (performance.now() - t0) / 1000;
      return { cpuShare: (u.cpuSec - u0.cpuSec) / sec, rssMiB: u.rssMiB, maxRssMiB: Math.max(max, u.rssMiB) };
    },
  };
}
