import { loopbackAwareLookup, loopbackFor } from '../../../src/util/net.js';

describe('*.localhost is loopback (RFC 6761)', () => {
  it.each([
    ['localhost', '127.0.0.1'],
    ['checkout-a.localhost', '127.0.0.1'],
    ['A.B.LOCALHOST.', '127.0.0.1'],
    ['localhost.example.com', undefined],
    ['notlocalhost', undefined],
  ])('%s → %s', (host, want) => expect(loopbackFor(host)).toBe(want));

  it('answers lookups in both shapes without asking DNS', async () => {
    const one = await new Promise((r) => loopbackAwareLookup('x.localhost', {}, (_e, a, f) => r([a, f])));
    expect(one).toEqual(['127.0.0.1', 4]);
    const all = await new Promise((r) => loopbackAwareLookup('x.localhost', { all: true }, (_e, a) => r(a)));
    expect(all).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });
});
