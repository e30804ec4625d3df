/**
 * Every failure sibyl raises on purpose is a SibylError with a stable `code` (undici's habit), so
 * callers and tests branch on the code, never on message text.
 */
export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_DURATION_INVALID'
  | 'ERR_QUANTITY_INVALID'
  | 'ERR_KUBE_API'
  | 'ERR_LEADER_LOST'
  | 'ERR_NO_ENDPOINT'
  | 'ERR_SHED'
  | 'ERR_NO_POOL'
  | 'ERR_UPSTREAM'
  | 'ERR_PROTOCOL'
  | 'ERR_MODEL'
  | 'ERR_CACHE'
  | 'ERR_CONTROL'
  | 'ERR_PROCESS'
  | 'ERR_USAGE';

export class SibylError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SibylError';
  }
}

export function isSibylError(e: unknown, code?: ErrorCode): e is SibylError {
  return e instanceof SibylError && (code === undefined || e.code === code);
}

/** A readable message from anything thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
