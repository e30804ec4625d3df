/**
 * The grpc-timeout header (PROTOCOL-HTTP2.md): `TimeoutValue TimeoutUnit`, a positive integer of at
 * most 8 ASCII digits followed by H (hours), M (minutes), S (seconds), m (milliseconds),
 * u (microseconds) or n (nanoseconds).
 */

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
const TIMEOUT = /^([0-9]{1,8})([HMSmun])$/;
const MAX_VALUE = 99_999_999;

/** Milliseconds (possibly fractional) for a grpc-timeout value, or undefined when it is malformed. */
export function parseGrpcTimeout(text: string): number | undefined {
  const m = TIMEOUT.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/**
 * The grpc-timeout text for `ms` milliseconds, in the finest unit whose value fits in 8 digits.
 * Rounds up, so a deadline carried on is never shorter than the time left by more than the rounding
 * of the unit below it. `ms` <= 0 gives "0n" (already expired); callers answer DEADLINE_EXCEEDED first.
 */
export function formatGrpcTimeout(ms: number): string {
  if (!(ms > 0)) return '0n';
  for (const unit of ['n', 'u', 'm', 'S', 'M', 'H'] as const) {
    const v = Math.ceil(ms / (UNIT_MS[unit] as number));
    if (v <= MAX_VALUE) return `${v}${unit}`;
  }
  return `${MAX_VALUE}H`;
}
