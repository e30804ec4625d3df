import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SibylError, errorMessage } from '../util/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O }>>['values'];

/**
 * A command's flags, node:util parseArgs with one behaviour for every command: `--help`/`-h` prints
 * `help` and gives undefined (the command then exits 0); an unknown flag or a missing value is
 * ERR_USAGE with the message and the help text.
 */
export function parseFlags<O extends Options>(
  argv: string[],
  options: O,
  help: string,
): Values<O> | undefined {
  let values: Values<O>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    throw new SibylError('ERR_USAGE', `${errorMessage(e)}\n\n${help}`);
  }
  if ((values as { help?: boolean }).help) {
    console.log(help);
    return undefined;
  }
  return values;
}

/**
 * A numeric flag's value: undefined when not given, else a finite number in [min, max] (a whole
 * number with `integer`), or ERR_USAGE naming the flag and the range.
 */
export function numberFlag(
  value: string | boolean | undefined,
  flag: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  integer = false,
): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    const what = integer ? 'a whole number' : 'a number';
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new SibylError('ERR_USAGE', `--${flag} "${String(value)}" must be ${what} ${range}`);
  }
  return n;
}
