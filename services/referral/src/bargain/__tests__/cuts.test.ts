// The cut arithmetic of a bargain (砍价): exact sums, positive cuts, reproducible from the seed.
import { randomBytes } from 'node:crypto';
import { bargainCuts, priceAfter } from '../cuts';

describe('bargainCuts', () => {
  test('the cuts are positive integers summing exactly to start − floor, for many seeds and sizes', () => {
    for (let i = 0; i < 300; i++) {
      const seed = randomBytes(32).toString('hex');
      const helpers = 1 + (i % 100);
      const total = helpers + ((i * 7919) % 1_000_000);
      const cuts = bargainCuts(seed, total, helpers);
      expect(cuts).toHaveLength(helpers);
      expect(cuts.every((c) => Number.isInteger(c) && c >= 1)).toBe(true);
      expect(cuts.reduce((a, c) => a + c, 0)).toBe(total);
    }
  });

  test('the same seed gives the same cuts; another seed other cuts', () => {
    const seed = 'a'.repeat(64);
    expect(bargainCuts(seed, 9_900, 5)).toEqual(bargainCuts(seed, 9_900, 5));
    expect(bargainCuts('b'.repeat(64), 9_900, 5)).not.toEqual(bargainCuts(seed, 9_900, 5));
  });

  test('exactly one fen per helper when the gap equals the helpers; a safe-integer gap stays exact', () => {
    expect(bargainCuts('s', 5, 5)).toEqual([1, 1, 1, 1, 1]);
    const big = Number.MAX_SAFE_INTEGER - 1;
    expect(bargainCuts('s', big, 7).reduce((a, c) => a + c, 0)).toBe(big);
    expect(() => bargainCuts('s', 4, 5)).toThrow(RangeError);
  });

  test('the price after k cuts never passes the floor, and reaches it at the last helper', () => {
    const cuts = bargainCuts('seed', 9_000, 10);
    for (let k = 0; k <= 12; k++) expect(priceAfter(cuts, 10_000, k)).toBeGreaterThanOrEqual(1_000);
    expect(priceAfter(cuts, 10_000, 10)).toBe(1_000);
    expect(priceAfter(cuts, 10_000, 12)).toBe(1_000);
  });
});
