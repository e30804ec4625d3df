import { formatGrpcTimeout, parseGrpcTimeout } from '../../../src/grpc/timeout.js';

describe('grpc-timeout', () => {
  it.each([
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3000],
    ['250m', 250],
    ['1500u', 1.5],
    ['2000000n', 2],
    ['99999999m', 99_999_999],
    ['0m', 0],
  ])('parses %s as %d ms', (text, ms) => {
    expect(parseGrpcTimeout(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '5', 'm', '1s', '123456789m', '-1S', '1.5S', ' 1S', '1S ', '1x', '1SS'])(
    'refuses %j',
    (text) => {
      expect(parseGrpcTimeout(text)).toBeUndefined();
    },
  );

  it.each([
    [0.5, '500000n'],
    [99, '99000000n'],
    [100, '100000u'],
    [250, '250000u'],
    [100_000, '100000m'],
    [99_999_999, '99999999m'],
    [100_000_000, '100000S'],
    [1e14, '27777778H'],
    [1e20, '99999999H'],
    [0, '0n'],
    [-5, '0n'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatGrpcTimeout(ms)).toBe(text);
  });

  it('round-trips without shortening the deadline', () => {
    for (const ms of [0.001, 1, 3.3, 999.9999, 12_345.678, 7_200_000.5]) {
      const back = parseGrpcTimeout(formatGrpcTimeout(ms)) as number;
      expect(back).toBeGreaterThanOrEqual(ms - 1e-9);
      expect(back - ms).toBeLessThanOrEqual(ms * 1e-6 + 1e-6);
    }
  });
});
