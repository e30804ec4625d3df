import { jest } from '@jest/globals';
import { numberFlag, parseFlags } from '../../../src/cli/flags.js';
import { isSibylError } from '../../../src/util/errors.js';

const opts = { port: { type: 'string' as const, default: '80' }, verbose: { type: 'boolean' as const } };

test('parses flags with defaults', () => {
  expect(parseFlags(['--verbose'], opts, 'HELP')).toMatchObject({ port: '80', verbose: true });
});

test('--help prints the help and gives undefined', () => {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    expect(parseFlags(['-h'], opts, 'usage: x')).toBeUndefined();
    expect(log).toHaveBeenCalledWith('usage: x');
  } finally {
    log.mockRestore();
  }
});

test('an unknown flag is ERR_USAGE with the help text', () => {
  let err: unknown;
  try {
    parseFlags(['--nope'], opts, 'usage: x');
  } catch (e) {
    err = e;
  }
  expect(isSibylError(err, 'ERR_USAGE')).toBe(true);
  expect((err as Error).message).toMatch(/--nope[\s\S]*usage: x/);
});

test('numberFlag checks the range and whole numbers, naming the flag', () => {
  expect(numberFlag(undefined, 'n', 0, 1)).toBeUndefined();
  expect(numberFlag('0.5', 'n', 0, 1)).toBe(0.5);
  expect(() => numberFlag('2', 'n', 0, 1)).toThrow(/--n "2" must be a number from 0 to 1/);
  expect(() => numberFlag('1.5', 'k', 1, undefined, true)).toThrow(
    /--k "1.5" must be a whole number of at least 1/,
  );
  expect(() => numberFlag('', 'n', 0, 1)).toThrow(/--n/);
  expect(() => numberFlag('abc', 'n', 0, 1)).toThrow(/--n/);
});
