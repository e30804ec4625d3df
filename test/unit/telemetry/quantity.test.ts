import { parseQuantity, tryParseQuantity } from '../../../src/telemetry/quantity.js';
import { isSibylError } from '../../../src/util/errors.js';

describe('Kubernetes quantities', () => {
  it.each([
    // CPU as metrics-server writes it
    ['250m', 0.25],
    ['1500000n', 0.0015],
    ['1', 1],
    ['2', 2],
    ['0', 0],
    ['100u', 0.0001],
    ['1.5', 1.5],
    // memory
    ['64Mi', 64 * 2 ** 20],
    ['123456Ki', 123456 * 1024],
    ['1Gi', 2 ** 30],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['1Ei', 2 ** 60],
    ['128974848', 128974848],
    ['129e6', 129e6],
    ['129M', 129e6],
    ['1k', 1000],
    ['1T', 1e12],
    ['1P', 1e15],
    // "E" alone is exa; with digits it is an exponent
    ['1E', 1e18],
    ['1E3', 1000],
    ['1e-3', 0.001],
    ['5e+2', 500],
    // number forms
    ['.5', 0.5],
    ['1.', 1],
    ['+1k', 1000],
    ['-250m', -0.25],
  ])('%s = %d', (text, want) => expect(parseQuantity(text)).toBeCloseTo(want, 12));

  it('scales decimals exactly', () => {
    expect(parseQuantity('250m')).toBe(0.25);
    expect(parseQuantity('1500000n')).toBe(0.0015);
    expect(parseQuantity('3m')).toBe(0.003);
  });

  it.each(['', 'm', 'Mi', '1KI', '1ki', '1 Mi', '1Mii', '1.2.3', 'abc', '1e', '1e1.5', '0x10', '1mi', ' 1'])(
    'refuses %j with ERR_QUANTITY_INVALID',
    (text) => {
      let err: unknown;
      try {
        parseQuantity(text);
      } catch (e) {
        err = e;
      }
      expect(isSibylError(err, 'ERR_QUANTITY_INVALID')).toBe(true);
      expect(tryParseQuantity(text)).toBeUndefined();
    },
  );

  it('tryParseQuantity passes undefined through', () => {
    expect(tryParseQuantity(undefined)).toBeUndefined();
    expect(tryParseQuantity('64Mi')).toBe(67108864);
  });
});
