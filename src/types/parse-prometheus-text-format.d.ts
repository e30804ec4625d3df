/**
 * Types for parse-prometheus-text-format 1.1.1 (it ships none): the Prometheus text exposition
 * format (0.0.4) parsed into prom2json's shape. Values stay strings, as in the text ("1.5e3",
 * "+Inf", "NaN"). Throws an Error named InvalidLineError on a malformed line.
 */
declare module 'parse-prometheus-text-format' {
  export interface PrometheusSample {
    /** Absent on summary and histogram families, which carry quantiles/buckets, count and sum. */
    value?: string;
    labels?: Record<string, string>;
    timestamp_ms?: string;
    quantiles?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }

  export interface PrometheusFamily {
    name: string;
    help: string;
    /** Upper case: COUNTER, GAUGE, SUMMARY, HISTOGRAM or UNTYPED. */
    type: string;
    metrics: PrometheusSample[];
  }

  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
