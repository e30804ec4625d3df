import parsePrometheusTextFormat, {
  type PrometheusFamily,
  type PrometheusSample,
} from 'parse-prometheus-text-format';
import { SibylError } from '../util/errors.js';

/** A series to read: a metric name and, optionally, labels a sample must carry. */
export interface SeriesSelector {
  name: string;
  labels: Readonly<Record<string, string>>;
}

const SELECTOR = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/;
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/;

/**
 * `name` or `name{label="value",…}` (equality matchers only). Throws ERR_CONFIG_INVALID otherwise.
 */
export function parseSeriesSelector(text: string): SeriesSelector {
  const m = SELECTOR.exec(text.trim());
  const bad = () =>
    new SibylError(
      'ERR_CONFIG_INVALID',
      `"${text}" is not a series: give a metric name, optionally with label="value" matchers in braces`,
    );
  if (!m) throw bad();
  const labels: Record<string, string> = {};
  const body = m[2]?.trim();
  if (body) {
    // Split on commas outside quoted values.
    for (const part of body.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
      const l = LABEL.exec(part);
      if (!l) throw bad();
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
  }
  return { name: m[1] as string, labels };
}

/**
 * Parses an exposition (text format 0.0.4; OpenMetrics text parses too). Throws on a malformed one.
 *
 * Histograms are read sample by sample: parse-prometheus-text-format 1.1.1 folds a histogram family
 * into one sample whatever its label sets (its flattenMetrics keeps one `buckets` map, so a later
 * series' buckets overwrite an earlier one's, and drops the labels and the _count), which would leave
 * one method of a backend's grpc_server_handling_seconds and lose which. Without its `# TYPE …
 * histogram` line the family's _bucket, _sum and _count samples come out as untyped series with every
 * label, `le` included (test/unit/telemetry/server-calls.test.ts checks both behaviours). The parser
 * also drops the last sample of an exposition that does not end in a newline.
 */
export function parseExposition(text: string): PrometheusFamily[] {
  const body = text.replace(/^#\s+TYPE\s+\S+\s+histogram\s*$/gm, '');
  return parsePrometheusTextFormat(body.endsWith('\n') ? body : `${body}\n`);
}

/** The samples of the selected family that carry the selector's labels. */
export function selectedSamples(
  families: readonly PrometheusFamily[],
  sel: SeriesSelector,
): PrometheusSample[] {
  const out: PrometheusSample[] = [];
  for (const f of families) {
    if (f.name !== sel.name) continue;
    for (const s of f.metrics)
      if (Object.entries(sel.labels).every(([k, v]) => s.labels?.[k] === v)) out.push(s);
  }
  return out;
}

/**
 * The sum of the selected series' samples, or undefined when no sample matches. Summing lets a
 * selector without labels cover a counter split by label (per CPU, per mode); non-finite values are
 * left out. Summary and histogram families have no plain values and never match.
 */
export function seriesValue(families: readonly PrometheusFamily[], sel: SeriesSelector): number | undefined {
  let sum: number | undefined;
  for (const s of selectedSamples(families, sel)) {
    if (s.value === undefined) continue;
    const v = Number(s.value);
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/** A sample's labels other than `omit`, as a stable key (the series' identity within its family). */
export function labelKey(s: PrometheusSample, omit = ''): string {
  return JSON.stringify(
    Object.entries(s.labels ?? {})
      .filter(([k]) => k !== omit)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
