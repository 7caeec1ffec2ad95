import { commissionOf, reversedAfter } from '../rates';

const P1 = 'a'.repeat(24);
const P2 = 'b'.repeat(24);
const rates = { level1Bps: 1000, level2Bps: 500, productRates: [{ productId: P2, level1Bps: 2000, level2Bps: 800 }] };
const lines = [
  { productId: P1, quantity: 2, unitPrice: 9900 },
  { productId: P2, quantity: 1, unitPrice: 4999 },
];

test('floor per line at the product rate or the default, summed', () => {
  expect(commissionOf(lines, 24799, rates, 1)).toBe(1980 + 999);
  expect(commissionOf(lines, 24799, rates, 2)).toBe(990 + 399);
});

test('a total below the lines (coupons) scales each base down; shipping above them earns nothing', () => {
  // 19800 × 12399/24799 = 9899 (floor), 4999 × 12399/24799 = 2499 (floor)
  expect(commissionOf(lines, 12399, rates, 1)).toBe(989 + 499);
  expect(commissionOf(lines, 30000, rates, 1)).toBe(2979);
  expect(commissionOf([{ productId: P1, quantity: 1, unitPrice: 0 }], 0, rates, 1)).toBe(0);
});

test('reversals are cumulative and floor: partial refunds never pass what one full refund reverses', () => {
  expect(reversedAfter(2979, 9900, 24799)).toBe(1189);
  expect(reversedAfter(2979, 24799, 24799)).toBe(2979);
  expect(reversedAfter(2979, 99999, 24799)).toBe(2979);
  let reversed = 0;
  for (let i = 0; i < 7; i++) reversed = reversedAfter(2979, Math.min(24799, (i + 1) * 3543), 24799);
  expect(reversed).toBe(2979);
});

test('no float anywhere: amounts beyond 2^53 / 10000 stay exact', () => {
  const big = [{ productId: P1, quantity: 1000, unitPrice: 9_000_000_000 }];
  expect(commissionOf(big, 9_000_000_000_000, rates, 1)).toBe(900_000_000_000);
});
