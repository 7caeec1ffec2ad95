import { discountOf, validateTemplate, couponWindow } from '../rules';

const now = new Date('2030-01-01T00:00:00Z');
const base = { name: 'c', validDaysAfterClaim: 7 };
const line = (productId: string, unitPrice: number, quantity = 1, categoryIds: string[] = []) => ({
  productId,
  unitPrice,
  quantity,
  categoryIds,
});

describe('coupon rules', () => {
  test('a fixed coupon never takes more than the eligible amount or the subtotal', () => {
    const t = validateTemplate({ ...base, kind: 'FIXED', amount: 5000 }, now);
    expect(discountOf(t, [line('p', 3000)], 3000).discount).toBe(3000);
    expect(discountOf(t, [line('p', 3000)], 1000).discount).toBe(1000);
    expect(discountOf(t, [line('p', 9000)], 9000).discount).toBe(5000);
  });

  test('a percent coupon rounds down on the eligible lines and stops at its cap', () => {
    const t = validateTemplate(
      { ...base, kind: 'PERCENT', percentOff: 15, maxDiscount: 1000, scope: 'CATEGORIES', categoryIds: ['tea'] },
      now,
    );
    expect(discountOf(t, [line('a', 999, 1, ['tea']), line('b', 100000)], 100999).discount).toBe(149);
    expect(discountOf(t, [line('a', 100000, 1, ['x', 'tea'])], 100000).discount).toBe(1000);
    expect(discountOf(t, [line('b', 100000)], 100000).refusal).toBe('OUT_OF_SCOPE');
  });

  test('满减: below the threshold the coupon does not apply', () => {
    const t = validateTemplate({ ...base, kind: 'FIXED', amount: 2000, threshold: 10000, scope: 'PRODUCTS', productIds: ['p'] }, now);
    expect(discountOf(t, [line('p', 9999), line('q', 5000)], 14999).refusal).toBe('BELOW_THRESHOLD');
    expect(discountOf(t, [line('p', 5000, 2)], 10000).discount).toBe(2000);
  });

  test('a coupon lasts validDaysAfterClaim from its issue, or the template window', () => {
    const days = validateTemplate({ ...base, kind: 'FIXED', amount: 1 }, now);
    expect(couponWindow(days, now).validUntil.toISOString()).toBe('2030-01-08T00:00:00.000Z');
    const window = validateTemplate(
      { name: 'w', kind: 'FIXED', amount: 1, validFrom: new Date('2030-02-01'), validUntil: new Date('2030-03-01') },
      now,
    );
    expect(couponWindow(window, now)).toEqual({ validFrom: new Date('2030-02-01'), validUntil: new Date('2030-03-01') });
  });
});
