import { l3Folder } from '../../../src/cache/pool-cache.js';

test("a pool's L3 folder is one safe path segment", () => {
  expect(l3Folder('demo')).toBe('demo');
  expect(l3Folder('shop/checkout')).toBe('shop%2Fcheckout');
  expect(l3Folder('..')).toBe('%2E%2E');
  expect(l3Folder('.hidden')).toBe('%2Ehidden');
  expect(l3Folder('a b\\c')).not.toMatch(/[/\\ ]/);
});
