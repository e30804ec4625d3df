import { tableFromWire } from '../../../src/router/wire-table.js';
import type { WirePool } from '../../../src/control/messages.js';
import { isUrgent } from '../../../src/control/urgency.js';
import { isSibylError } from '../../../src/util/errors.js';

const pool = (extra: Partial<WirePool> = {}): WirePool => ({
  name: 'ns/shop',
  specJson: JSON.stringify({ match: { services: ['x.Shop'] } }),
  endpoints: [{ address: '127.0.0.1:1', pod: 'p', ready: true, forceOpen: false, figuresAgeMs: 0 }],
  policy: 'RoundRobin',
  ...extra,
});
const cache = {
  methods: [{ method: '/x.Shop/Get', ttl: '30s' }],
  l2: { redis: { url: 'redis://127.0.0.1:6379' } },
};

describe('cache config on the control stream', () => {
  it("the tier's cache becomes the pool's cache, and the flush token the route's", () => {
    const t = tableFromWire([pool({ cacheJson: JSON.stringify(cache), cacheFlushToken: 'f1' })], 7, 0);
    const r = t.pools[0];
    expect(r?.cache).toEqual(cache);
    expect(r?.cacheFlushToken).toBe('f1');
    const plain = tableFromWire([pool({ cacheJson: '', cacheFlushToken: '' })], 8, 0).pools[0];
    expect(plain?.cache).toBeUndefined();
    expect(plain?.cacheFlushToken).toBeUndefined();
  });

  it('a cache the router cannot run is refused like a bad routes file (the update is nacked)', () => {
    const bad = { methods: [{ method: '/x.Shop/Get' }], l2: { redis: { secretRef: { name: 's' } } } };
    let err: unknown;
    try {
      tableFromWire([pool({ cacheJson: JSON.stringify(bad) })], 9, 0);
    } catch (e) {
      err = e;
    }
    expect(isSibylError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect(String(err)).toMatch(/cache\.l2\.redis/);
  });

  it('a pool without endpoints still has its cache checked; cache_json that is no JSON is refused', () => {
    const bad = { methods: [] };
    const noEndpoints = pool({ endpoints: [], cacheJson: JSON.stringify(bad) });
    const other = pool({ name: 'ns/other', specJson: JSON.stringify({ match: { services: ['x.Other'] } }) });
    expect(() => tableFromWire([other, noEndpoints], 10, 0)).toThrow(/ns\/shop\.cache\.methods/);
    expect(() => tableFromWire([pool({ cacheJson: '{' })], 11, 0)).toThrow(/cache_json is not JSON/);
  });

  it('a cache or flush token change reaches routers at once', () => {
    expect(isUrgent(pool(), pool({ cacheJson: '{}' }))).toBe(true);
    expect(isUrgent(pool({ cacheFlushToken: 'a' }), pool({ cacheFlushToken: 'b' }))).toBe(true);
    expect(isUrgent(pool({ cacheFlushToken: '' }), pool())).toBe(false);
  });
});
