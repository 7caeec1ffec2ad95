import { assessLine } from '../cart/service';
import { mergeLines } from '../order/lines';
import { priceCheckout, type CatalogQuote, type QuoteAdjuster } from '../checkout/pricing';
import { refusal, statusOf } from '../order/state';

describe('the order state machine (pure)', () => {
  test.each([
    ['PENDING_PAYMENT', 'PAID', 'PAYMENT'],
    ['PENDING_PAYMENT', 'CANCELLED', 'MEMBER'],
    ['PENDING_PAYMENT', 'CANCELLED', 'STAFF'],
    ['PENDING_PAYMENT', 'CANCELLED', 'SYSTEM'],
    ['PAID', 'SHIPPED', 'STAFF'],
    ['SHIPPED', 'DELIVERED', 'STAFF'],
    ['DELIVERED', 'COMPLETED', 'MEMBER'],
    ['DELIVERED', 'COMPLETED', 'STAFF'],
  ] as const)('%s → %s by %s is allowed', (from, to, by) => {
    expect(refusal(from, to, by)).toBeNull();
  });

  test.each([
    ['PAID', 'CANCELLED', 'MEMBER'],
    ['CANCELLED', 'PAID', 'PAYMENT'],
    ['PAID', 'PAID', 'PAYMENT'],
    ['PENDING_PAYMENT', 'SHIPPED', 'STAFF'],
    ['PENDING_PAYMENT', 'PAID', 'STAFF'],
    ['PAID', 'SHIPPED', 'MEMBER'],
    ['COMPLETED', 'CANCELLED', 'STAFF'],
  ] as const)('%s → %s by %s is refused', (from, to, by) => {
    expect(refusal(from, to, by)).toEqual(expect.any(String));
  });

  test('an order without transitions is PENDING_PAYMENT', () => {
    expect(statusOf(null)).toBe('PENDING_PAYMENT');
    expect(statusOf({ to: 'PAID' })).toBe('PAID');
  });
});

describe('cart line assessment', () => {
  const held = { skuId: 's1', quantity: 2, unitPrice: 1000 };
  const quoted = (unitPrice: number) => ({
    ok: true as const,
    line: { skuId: 's1', productId: 'p1', quantity: 2, unitPrice, priceKind: 'LIST' as const, name: 'n', skuName: 'k' },
  });

  test('the same price is OK; another price is PRICE_CHANGED with both prices in the message', () => {
    expect(assessLine(held, quoted(1000))).toEqual({ status: 'OK', message: null, unitPrice: 1000, subtotal: 2000, priceKind: 'LIST' });
    const changed = assessLine(held, quoted(800));
    expect(changed).toMatchObject({ status: 'PRICE_CHANGED', unitPrice: 800, subtotal: 1600 });
    expect(changed.message).toContain('1000');
    expect(changed.message).toContain('800');
  });

  test.each([
    ['NOT_FOUND', 'UNKNOWN'],
    ['BAD_USER_INPUT', 'OFF_SHELF'],
    ['OUT_OF_STOCK', 'OUT_OF_STOCK'],
    ['UNAVAILABLE', 'UNAVAILABLE'],
    [null, 'UNAVAILABLE'],
  ])("catalog's %s flags the line %s, unpriced", (code, status) => {
    expect(assessLine(held, { ok: false, code, message: 'refused' })).toMatchObject({
      status,
      unitPrice: null,
      subtotal: null,
      priceKind: null,
    });
  });
});

describe('checkout pricing', () => {
  const quote: CatalogQuote = {
    lines: [
      { skuId: 'a', productId: 'p', quantity: 2, unitPrice: 5000, priceKind: 'MEMBER', name: 'n', skuName: 'k' },
      { skuId: 'b', productId: 'p', quantity: 1, unitPrice: 3000, priceKind: 'LIST', name: 'n', skuName: 'k' },
    ],
    total: 13000,
    currency: 'CNY',
  };
  const base = { checkoutId: 'c1', memberId: 'm1', source: { kind: 'DIRECT' as const, refId: null }, quote };
  const adjuster = (name: string, propose: QuoteAdjuster['quote']): QuoteAdjuster => ({
    name,
    quote: propose,
    lock: async () => undefined,
    release: async () => undefined,
  });

  test('without adjusters an order costs exactly the catalog quote', async () => {
    expect(await priceCheckout([], base)).toEqual({ subtotal: 13000, adjustments: [], total: 13000 });
  });

  test('adjusters run in order, each seeing what the earlier ones took off', async () => {
    const seen: number[] = [];
    const coupon = adjuster('membership.coupon', async (ctx) => {
      seen.push(ctx.runningTotal);
      return [{ kind: 'COUPON', amount: -1000, label: '满100减10', ref: 'coupon-1' }];
    });
    const points = adjuster('membership.points', async (ctx) => {
      seen.push(ctx.runningTotal);
      expect(ctx.applied.map((a) => a.adjuster)).toEqual(['membership.coupon']);
      return [{ kind: 'POINTS', amount: -500, label: '500 points', ref: 'lock-1' }];
    });
    const priced = await priceCheckout([coupon, points], base);
    expect(seen).toEqual([13000, 12000]);
    expect(priced).toEqual({
      subtotal: 13000,
      total: 11500,
      adjustments: [
        { adjuster: 'membership.coupon', kind: 'COUPON', amount: -1000, label: '满100减10', ref: 'coupon-1' },
        { adjuster: 'membership.points', kind: 'POINTS', amount: -500, label: '500 points', ref: 'lock-1' },
      ],
    });
  });

  test.each([
    ['a surcharge', { kind: 'COUPON', amount: 100, label: 'x', ref: 'r' }],
    ['a fraction of a fen', { kind: 'COUPON', amount: -0.5, label: 'x', ref: 'r' }],
    ['a discount below zero', { kind: 'POINTS', amount: -13001, label: 'x', ref: 'r' }],
    ['a SKU not in the order', { kind: 'GROUP_BUY', amount: -10, label: 'x', ref: 'r', skuId: 'zzz' }],
  ] as const)('an adjuster proposing %s fails the checkout', async (_, proposal) => {
    await expect(priceCheckout([adjuster('bad', async () => [proposal])], base)).rejects.toThrow();
  });
});

describe('checkout lines', () => {
  test('lines of one SKU are summed and the result is ordered by SKU', () => {
    expect(
      mergeLines([
        { skuId: 'b', quantity: 1 },
        { skuId: 'a', quantity: 2 },
        { skuId: 'b', quantity: 3 },
      ]),
    ).toEqual([
      { skuId: 'a', quantity: 2 },
      { skuId: 'b', quantity: 4 },
    ]);
  });
});
