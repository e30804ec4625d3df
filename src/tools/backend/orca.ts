import { availableParallelism, totalmem } from 'node:os';
import type { Clock } from '../../util/clock.js';

/**
 * Figures for ORCA load reports (xds.data.orca.v3.OrcaLoadReport): CPU utilisation is this process's
 * CPU time over the last window, per core, plus the share of busy slots (the simulated work of a
 * backend that sleeps instead of computing), capped at 1; memory utilisation is RSS over the memory the
 * process may use (its cgroup limit when Node knows it, else the machine's).
 */
export class LoadSampler {
  private lastCpuMicros: number;
  private lastAtMs: number;
  private cpuShare = 0;
  private readonly cores = availableParallelism();
  private readonly memoryLimit: number;

  constructor(
    private readonly clock: Clock,
    private readonly busyShare: () => number,
    private readonly windowMs = 250,
  ) {
    const u = process.cpuUsage();
    this.lastCpuMicros = u.user + u.system;
    this.lastAtMs = clock.now();
    const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
    this.memoryLimit =
      constrained && constrained > 0 && constrained < Number.MAX_SAFE_INTEGER ? constrained : totalmem();
  }

  cpu(): number {
    const now = this.clock.now();
    if (now - this.lastAtMs >= this.windowMs) {
      const u = process.cpuUsage();
      const micros = u.user + u.system;
      this.cpuShare = (micros - this.lastCpuMicros) / 1000 / (now - this.lastAtMs) / this.cores;
      this.lastCpuMicros = micros;
      this.lastAtMs = now;
    }
    return Math.min(1, Math.max(0, this.cpuShare + this.busyShare()));
  }

  memory(): number {
    return Math.min(1, process.memoryUsage.rss() / this.memoryLimit);
  }
}
