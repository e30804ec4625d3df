import { SibylError } from './errors.js';

/**
 * Go-style durations as Kubernetes APIs write them ("250ms", "1m30s", "1.5h"). The same grammar is
 * enforced by the CRDs' CEL rules; this parser is for code that reads those fields.
 */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$';
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)/g;

export function parseDuration(text: string): number {
  if (!new RegExp(DURATION_PATTERN).test(text)) {
    throw new SibylError('ERR_DURATION_INVALID', `"${text}" is not a duration such as 500ms, 5s or 1m30s`);
  }
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms;
}

/** A short human form: 0.42ms, 12ms, 3.2s, 5m. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${(ms / 60_000).toFixed(1)}m`;
}
