import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Each resilience case's figures and checks, appended as one JSON line to SIBYL_RESILIENCE_FIGURES
 * (`make reliability` sets it, then renders docs/reliability.md from it with render-reliability.js),
 * or else to resilience.jsonl in the run's state folder, which the global teardown removes: a plain
 * test run prints the figures and writes no tracked file.
 */
export interface Check {
  what: string;
  target: string;
  measured: string;
  ok: boolean;
}

export interface CaseRecord {
  id: string;
  checks: Check[];
  figures: Array<[string, string]>;
  wallMs: number;
}

export function figuresFile(): string {
  const chosen = process.env.SIBYL_RESILIENCE_FIGURES;
  if (chosen) return chosen;
  const work = process.env.SIBYL_TEST_WORK;
  if (!work) throw new Error('SIBYL_TEST_WORK is unset: resilience tests run under their jest project');
  return join(work, 'resilience.jsonl');
}

export const pct = (x: number, digits = 2) => `${(x * 100).toFixed(digits)}%`;
export const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;

export class CaseReport {
  private readonly checks: Check[] = [];
  private readonly figures: Array<[string, string]> = [];
  private readonly t0 = Date.now();

  constructor(readonly id: string) {}

  figure(label: string, value: string | number): this {
    this.figures.push([label, String(value)]);
    console.log(`[${this.id}] ${label}: ${value}`);
    return this;
  }

  check(what: string, target: string, measured: string | number, ok: boolean): this {
    this.checks.push({ what, target, measured: String(measured), ok });
    console.log(`[${this.id}] ${ok ? 'PASS' : 'FAIL'} ${what}: ${measured} (target ${target})`);
    return this;
  }

  /** Writes the record, then fails the test on the first check that missed its target. */
  finish(error?: unknown): void {
    if (error !== undefined)
      this.check('ran to the end', 'no error', error instanceof Error ? error.message : String(error), false);
    const rec: CaseRecord = {
      id: this.id,
      checks: this.checks,
      figures: this.figures,
      wallMs: Date.now() - this.t0,
    };
    appendFileSync(figuresFile(), `${JSON.stringify(rec)}\n`);
    if (error !== undefined) throw error;
    for (const c of this.checks) {
      expect({ check: c.what, measured: c.measured, target: c.target, ok: c.ok }).toEqual({
        check: c.what,
        measured: c.measured,
        target: c.target,
        ok: true,
      });
    }
  }
}

/** Runs one case: its checks are recorded whether it ends well, misses a target or throws. */
export async function runCase(id: string, body: (r: CaseReport) => Promise<void>): Promise<void> {
  const r = new CaseReport(id);
  let error: unknown;
  try {
    await body(r);
  } catch (e) {
    error = e;
  }
  r.finish(error);
}
