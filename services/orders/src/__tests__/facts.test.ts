import { assessLine } from '../cart/service';
import {
  allRefunded,
  fulfilled,
  paidByLine,
  planHold,
  planShipment,
  withStatus,
  type AfterSaleKind,
  type OrderFacts,
} from '../order/facts';
import type { OrderDoc } from '../order/model';
import { refusal } from '../order/state';

const line = (skuId: string, quantity: number, unitPrice: number) => ({
  productId: 'p',
  skuId,
  name: 'n',
  skuName: 'k',
  quantity,
  unitPrice,
  subtotal: quantity * unitPrice,
});

function orderOf(lines: ReturnType<typeof line>[], adjustments: OrderDoc['adjustments'] = []): OrderDoc {
  const subtotal = lines.reduce((s, l) => s + l.subtotal, 0);
  return {
    _id: 'o1',
    memberId: 'm1',
    status: 'PAID',
    lines,
    subtotal,
    adjustments,
    total: subtotal + (adjustments ?? []).reduce((s, a) => s + a.amount, 0),
    currency: 'CNY',
    source: { kind: 'DIRECT', refId: null },
    requestHash: 'h',
    createdAt: new Date(0),
  };
}
const fresh = (): OrderFacts => ({ shipped: [], holds: [], since: new Date(0), deliveredAt: null });
const hold = (order: OrderDoc, facts: OrderFacts, id: string, kind: AfterSaleKind, lines: { skuId: string; quantity: number }[]) => ({
  ...facts,
  holds: [...facts.holds, ...planHold(order, facts, id, kind, lines)],
});
const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as { extensions?: { code?: string } }).extensions?.code;
  }
};

describe('the order state machine with fulfilment and after-sales (pure)', () => {
  test.each([
    ['PAID', 'PARTIALLY_SHIPPED', 'STAFF'],
    ['PAID', 'SHIPPED', 'STAFF'],
    ['PARTIALLY_SHIPPED', 'SHIPPED', 'STAFF'],
    ['PARTIALLY_SHIPPED', 'SHIPPED', 'SYSTEM'],
    ['SHIPPED', 'DELIVERED', 'MEMBER'],
    ['SHIPPED', 'DELIVERED', 'SYSTEM'],
    ['DELIVERED', 'COMPLETED', 'SYSTEM'],
    ['PAID', 'REFUNDED', 'SYSTEM'],
    ['DELIVERED', 'REFUNDED', 'SYSTEM'],
    ['COMPLETED', 'REFUNDED', 'SYSTEM'],
  ] as const)('%s → %s by %s is allowed', (from, to, by) => {
    expect(refusal(from, to, by)).toBeNull();
  });

  test.each([
    ['PARTIALLY_SHIPPED', 'DELIVERED', 'MEMBER'],
    ['PAID', 'DELIVERED', 'SYSTEM'],
    ['PAID', 'REFUNDED', 'STAFF'],
    ['REFUNDED', 'SHIPPED', 'STAFF'],
    ['REFUNDED', 'PAID', 'PAYMENT'],
    ['PENDING_PAYMENT', 'REFUNDED', 'SYSTEM'],
    ['CANCELLED', 'REFUNDED', 'SYSTEM'],
    ['SHIPPED', 'PARTIALLY_SHIPPED', 'STAFF'],
  ] as const)('%s → %s by %s is refused', (from, to, by) => {
    expect(refusal(from, to, by)).toEqual(expect.any(String));
  });
});

describe('what each line cost', () => {
  test('without adjustments a line cost its subtotal', () => {
    expect(paidByLine(orderOf([line('a', 2, 5000), line('b', 1, 3000)]))).toEqual(
      new Map([
        ['a', 10000],
        ['b', 3000],
      ]),
    );
  });

  test('line-level adjustments stay on their line; order-level ones are shared in proportion; the lines add up to the total', () => {
    const order = orderOf(
      [line('a', 3, 3333), line('b', 1, 1001), line('c', 7, 17)],
      [
        { adjuster: 'x', kind: 'GROUP_BUY', label: 'g', amount: -999, ref: 'r', skuId: 'b' },
        { adjuster: 'y', kind: 'COUPON', label: 'c', amount: -1001, ref: 'r' },
      ],
    );
    const paid = paidByLine(order);
    expect([...paid.values()].reduce((s, v) => s + v, 0)).toBe(order.total);
    expect(paid.get('b')).toBeLessThanOrEqual(2);
    for (const v of paid.values()) expect(Number.isInteger(v) && v >= 0).toBe(true);
  });
});

describe('claiming units for after-sales', () => {
  const order = orderOf([line('a', 3, 3333), line('b', 2, 5000)]);

  test('amounts come from the paid prices; the last unit takes exactly what is left', () => {
    let facts = hold(order, fresh(), 's1', 'REFUND_ONLY', [{ skuId: 'a', quantity: 1 }]);
    expect(facts.holds[0]).toMatchObject({ amount: 3333, quantity: 1, unshipped: 1, status: 'REQUESTED' });
    facts = hold(order, facts, 's2', 'REFUND_ONLY', [
      { skuId: 'a', quantity: 2 },
      { skuId: 'b', quantity: 2 },
    ]);
    expect(facts.holds.map((h) => h.amount)).toEqual([3333, 6666, 10000]);
    expect(codeOf(() => planHold(order, facts, 's3', 'REFUND_ONLY', [{ skuId: 'a', quantity: 1 }]))).toBe('BAD_USER_INPUT');
  });

  test('rejections give units and money back; however the requests fall, refunds never exceed what was paid', () => {
    // 100 units for 199 fen: a price that does not divide evenly, claimed in awkward pieces.
    const odd = orderOf([line('a', 100, 1)], []);
    odd.lines[0]!.subtotal = 199;
    odd.total = 199;
    let facts = fresh();
    for (let i = 0; i < 10; i++) facts = hold(odd, facts, `small${i}`, 'REFUND_ONLY', [{ skuId: 'a', quantity: 1 }]);
    facts = hold(odd, facts, 'big', 'REFUND_ONLY', [{ skuId: 'a', quantity: 90 }]);
    for (let i = 0; i < 10; i++) facts = { ...facts, holds: withStatus(facts, `small${i}`, 'REJECTED') };
    facts = hold(odd, facts, 'again', 'REFUND_ONLY', [{ skuId: 'a', quantity: 9 }]);
    facts = hold(odd, facts, 'last', 'REFUND_ONLY', [{ skuId: 'a', quantity: 1 }]);
    const live = facts.holds.filter((h) => h.status !== 'REJECTED');
    expect(live.reduce((s, h) => s + h.amount, 0)).toBe(199);
    expect(live.every((h) => h.amount >= 0)).toBe(true);
  });

  test('a return takes only shipped units; a refund-only takes unshipped units first', () => {
    expect(codeOf(() => planHold(order, fresh(), 's1', 'RETURN_AND_REFUND', [{ skuId: 'a', quantity: 1 }]))).toBe('BAD_USER_INPUT');
    const shipped = { ...fresh(), shipped: [{ shipmentId: 'p1', skuId: 'a', quantity: 2 }] };
    expect(planHold(order, shipped, 's1', 'RETURN_AND_REFUND', [{ skuId: 'a', quantity: 2 }])[0]).toMatchObject({ unshipped: 0 });
    expect(planHold(order, shipped, 's1', 'REFUND_ONLY', [{ skuId: 'a', quantity: 2 }])[0]).toMatchObject({ unshipped: 1 });
  });

  test('everything refunded only once every unit is', () => {
    let facts = hold(order, fresh(), 's1', 'REFUND_ONLY', [
      { skuId: 'a', quantity: 3 },
      { skuId: 'b', quantity: 1 },
    ]);
    facts = { ...facts, holds: withStatus(facts, 's1', 'REFUNDED') };
    expect(allRefunded(order, facts)).toBe(false);
    facts = hold(order, facts, 's2', 'REFUND_ONLY', [{ skuId: 'b', quantity: 1 }]);
    facts = { ...facts, holds: withStatus(facts, 's2', 'REFUNDED') };
    expect(allRefunded(order, facts)).toBe(true);
  });
});

describe('planning shipments', () => {
  const order = orderOf([line('a', 3, 100), line('b', 1, 100)]);

  test('by default everything left to ship; units under a refund-only never ship', () => {
    const facts = hold(order, fresh(), 's1', 'REFUND_ONLY', [{ skuId: 'a', quantity: 1 }]);
    expect(planShipment(order, facts, null)).toEqual([
      { skuId: 'a', quantity: 2 },
      { skuId: 'b', quantity: 1 },
    ]);
    expect(codeOf(() => planShipment(order, facts, [{ skuId: 'a', quantity: 3 }]))).toBe('BAD_USER_INPUT');
  });

  test('an order is fulfilled once nothing is left to ship and no after-sale is deciding about unshipped units', () => {
    let facts = hold(order, fresh(), 's1', 'REFUND_ONLY', [{ skuId: 'b', quantity: 1 }]);
    facts = { ...facts, shipped: [{ shipmentId: 'p1', skuId: 'a', quantity: 3 }] };
    expect(fulfilled(order, facts)).toBe(false);
    expect(codeOf(() => planShipment(order, facts, null))).toBe('CONFLICT');
    expect(fulfilled(order, { ...facts, holds: withStatus(facts, 's1', 'REFUNDED') })).toBe(true);
    expect(fulfilled(order, { ...facts, holds: withStatus(facts, 's1', 'REJECTED') })).toBe(false);
  });
});

describe('cart lines and stock', () => {
  const quoted = (available?: number) => ({
    ok: true as const,
    line: { skuId: 's1', productId: 'p1', quantity: 3, unitPrice: 1000, priceKind: 'LIST' as const, name: 'n', skuName: 'k', available },
  });
  const held = { skuId: 's1', quantity: 3, unitPrice: 1000 };

  test('more than the catalog has available is OUT_OF_STOCK, unpriced; enough, or no figure, is OK', () => {
    expect(assessLine(held, quoted(2))).toEqual({
      status: 'OUT_OF_STOCK',
      message: 'Only 2 left',
      unitPrice: null,
      subtotal: null,
      priceKind: null,
    });
    expect(assessLine(held, quoted(0)).message).toBe('Out of stock');
    expect(assessLine(held, quoted(3)).status).toBe('OK');
    expect(assessLine(held, quoted()).status).toBe('OK');
  });
});
