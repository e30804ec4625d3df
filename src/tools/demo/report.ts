import { formatMs } from '../../util/duration.js';
import type { PhaseResult } from './traffic.js';

/** What the demo prints while traffic runs and at the end. */

const tty = process.stdout.isTTY;

export function clearLine(): void {
  if (tty) process.stdout.write('\r\x1b[2K');
}

/** The live progress line (on a terminal; every five seconds otherwise). */
export function progress(say: (l: string) => void) {
  let last = 0;
  return (s: { sent: number; inflight: number; recent: Array<{ ms: number; ok: boolean }> }) => {
    const now = Date.now();
    if (now - last < (tty ? 250 : 5000)) return;
    last = now;
    const ok = s.recent
      .filter((x) => x.ok)
      .map((x) => x.ms)
      .sort((a, b) => a - b);
    const p50 = ok[Math.floor(ok.length / 2)] ?? NaN;
    const errs = s.recent.filter((x) => !x.ok).length;
    const line = `  … ${s.sent} calls sent, ${s.inflight} in flight, recent p50 ${formatMs(p50)}, recent errors ${errs}/${s.recent.length}`;
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else say(line);
  };
}

export function phaseLine(r: PhaseResult): string {
  return `  ${r.name}: p50 ${formatMs(r.p50Ms)}, p99 ${formatMs(r.p99Ms)}, errors ${r.errors} of ${r.calls}`;
}

/** Every backend gets a column, also one that served nothing (a failing one behind an open breaker). */
export function table(rows: PhaseResult[], backends: string[]): string {
  const head = ['phase', 'calls', 'p50', 'p99', 'errors', ...backends.map((b) => `%${b}`)];
  const body = rows.map((r) => [
    r.name,
    String(r.calls),
    formatMs(r.p50Ms),
    formatMs(r.p99Ms),
    `${((100 * r.errors) / Math.max(1, r.calls)).toFixed(2)}%`,
    ...backends.map((b) => `${((100 * (r.byBackend[b] ?? 0)) / Math.max(1, r.ok)).toFixed(0)}`),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...body.map(fmt)].join('\n');
}
