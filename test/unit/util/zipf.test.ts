import { seededRandom } from '../../../src/util/clock.js';
import { Zipf } from '../../../src/util/zipf.js';

test('probabilities follow 1/(k+1)^s and sum to one', () => {
  const z = new Zipf(100, 1);
  let sum = 0;
  for (let k = 0; k < 100; k++) sum += z.p(k);
  expect(sum).toBeCloseTo(1, 12);
  expect(z.p(0) / z.p(1)).toBeCloseTo(2, 9);
  expect(z.p(0) / z.p(9)).toBeCloseTo(10, 9);
});

test('draws match the probabilities (seeded)', () => {
  const z = new Zipf(50, 1.1);
  const r = seededRandom(3);
  const counts = new Array<number>(50).fill(0);
  const n = 200_000;
  for (let i = 0; i < n; i++) counts[z.draw(r)]! += 1;
  for (const k of [0, 1, 4, 20]) expect(counts[k]! / n).toBeCloseTo(z.p(k), 2);
  expect(Math.min(...counts)).toBeGreaterThan(0);
});

test('s = 0 is uniform; bad parameters are refused', () => {
  const z = new Zipf(4, 0);
  expect(z.p(3)).toBeCloseTo(0.25, 12);
  expect(() => new Zipf(0, 1)).toThrow(RangeError);
  expect(() => new Zipf(10, -1)).toThrow(RangeError);
});
