import { Value } from '@sinclair/typebox/value';
import '../../../src/api/schema.js';
import { BackendPoolSpec } from '../../../src/api/backendpool.js';
import { resolvePoolSpec, resolveTimeout } from '../../../src/api/resolve.js';

describe('spec.timeout resolved', () => {
  it('takes the default deadline and the per-try policy with its defaults', () => {
    expect(resolvePoolSpec({ timeout: { default: '2s', predicted: {} } })).toMatchObject({
      timeoutMs: 2000,
      predictedTimeout: { multiplier: 2, floorMs: 10 },
    });
    expect(resolveTimeout({ predicted: { multiplier: 3, floor: '20ms', ceiling: '1s' } })).toEqual({
      predictedTimeout: { multiplier: 3, floorMs: 20, ceilingMs: 1000 },
    });
    expect(resolveTimeout(undefined)).toEqual({});
  });

  it('reads a bare duration, stored before the field became an object, as the default deadline', () => {
    expect(resolveTimeout('750ms')).toEqual({ timeoutMs: 750 });
  });

  it('hedges at the 0.99 quantile of the call unless told otherwise', () => {
    expect(resolvePoolSpec({}).hedging.quantile).toBe(0.99);
    expect(resolvePoolSpec({ hedging: { quantile: 0.9 } }).hedging.quantile).toBe(0.9);
  });

  it('refuses a multiplier below 1 and a quantile outside 0.5..0.999', () => {
    const spec = (extra: object) => ({
      match: { services: ['a.B'] },
      endpoints: [{ address: 'h:1' }],
      ...extra,
    });
    expect(Value.Check(BackendPoolSpec, spec({ timeout: { predicted: { multiplier: 0.5 } } }))).toBe(false);
    expect(Value.Check(BackendPoolSpec, spec({ hedging: { quantile: 0.3 } }))).toBe(false);
    expect(Value.Check(BackendPoolSpec, spec({ timeout: { predicted: { multiplier: 2 } } }))).toBe(true);
  });
});
