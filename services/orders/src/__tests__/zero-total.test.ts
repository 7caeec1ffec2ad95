// A checkout whose adjustments cover everything (an ambassador's trial coupon, say) costs 0 fen: it
// goes through the normal saga and is paid at once by a zero-total settlement (provider `none`,
// no intent), so every consumer of `orders.order.paid` sees a normal paid order. Real catalog,
// FerretDB and NATS; the coupon is a test adjuster (membership is not running here).
import type { QuoteAdjuster } from '../checkout/pricing';
import { orderIdFor } from '../checkout';
import {
  asMember,
  asStaff,
  client,
  newKey,
  newMember,
  ORDER,
  outboxOf,
  PAY,
  PLACE,
  startHarness,
  type Harness,
  type Seeded,
} from './support';

/** Takes everything off (a coupon covering the goods) when the checkout asks for `couponId: FREE`. */
const locked: string[] = [];
const freeCoupon: QuoteAdjuster = {
  name: 'test.coupon',
  async quote(ctx) {
    if (ctx.benefits?.couponId !== 'FREE') return [];
    return [{ kind: 'COUPON', amount: -ctx.runningTotal, label: '体验官试用券', ref: `coupon-${ctx.checkoutId}` }];
  },
  async lock(checkoutId, _memberId, adjustments) {
    if (adjustments.length) locked.push(checkoutId);
  },
  async release() {},
};

let h: Harness;
let tea: Seeded;
beforeAll(async () => {
  h = await startHarness({ start: { adjusters: [freeCoupon] } });
  tea = await h.seed('ON_SALE', [{ price: 16800, stock: 100 }]);
});
afterAll(() => h.stop());

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const sku = () => tea.skus[0]!.id;
const paymentsOf = (orderId: string) => h.svc.db.collection('payments').find({ orderId }).toArray();
const paidMoves = async (orderId: string) =>
  h.svc.db.collection('order_transitions').countDocuments({ accountId: orderId, from: 'PENDING_PAYMENT', to: 'PAID' });

async function placeFree(m: string, key = newKey()) {
  const res = await call(PLACE, { input: { idempotencyKey: key, lines: [{ skuId: sku(), quantity: 1 }], couponId: 'FREE' } }, asMember(m));
  expect(res.errors).toBeUndefined();
  return res.data!.placeOrder;
}

describe('zero-total orders', () => {
  test('a checkout the coupon covers entirely is PAID at once, with a zero payment and a normal paid event', async () => {
    const m = newMember();
    const order = await placeFree(m);
    expect(order).toMatchObject({
      status: 'PAID',
      total: { amount: 0, currency: 'CNY' },
      subtotal: { amount: 16800 },
      payBy: null,
      payments: [{ id: `none:${order.id}`, amount: { amount: 0 }, status: 'CAPTURED', refundReason: null }],
    });
    expect(order.history.map((x: { to: string; by: string }) => `${x.to}:${x.by}`)).toEqual(['PENDING_PAYMENT:MEMBER', 'PAID:PAYMENT']);
    expect(locked).toContain(order.id);
    const events = await outboxOf(h, order.id);
    expect(events.map((e) => e.subject)).toEqual(['orders.order.paid']);
    expect(events[0]!.data).toMatchObject({
      orderId: order.id,
      total: 0,
      paymentId: `none:${order.id}`,
      couponIds: [`coupon-${order.id}`],
    });
    // No provider: no intent, and asking to pay is refused.
    expect(await h.svc.db.collection('payment_intents').countDocuments({ orderId: order.id })).toBe(0);
    expect(code(await call(PAY, { id: order.id }, asMember(m)))).toBe('CONFLICT');
    // The unpaid allowance is given back as for any paid order.
    expect(await h.svc.service.unpaidHeldBy(m)).toMatchObject({ orders: [], units: 0 });
  });

  test('a retried zero-total checkout (three at once, then again) pays once', async () => {
    const m = newMember();
    const key = newKey();
    const first = await Promise.all([placeFree(m, key), placeFree(m, key), placeFree(m, key)]);
    const again = await placeFree(m, key);
    const orderId = orderIdFor(m, key);
    expect(new Set([...first, again].map((o) => o.id))).toEqual(new Set([orderId]));
    expect(again.status).toBe('PAID');
    expect(await paymentsOf(orderId)).toHaveLength(1);
    expect(await paidMoves(orderId)).toBe(1);
    expect((await outboxOf(h, orderId)).filter((e) => e.subject === 'orders.order.paid')).toHaveLength(1);
  });

  test('a crash right after the order was decided: the replay inserts it and pays it', async () => {
    const m = newMember();
    const key = newKey();
    h.hooks.afterPlaced = async () => {
      throw new Error('simulated crash after PLACED');
    };
    const input = { idempotencyKey: key, lines: [{ skuId: sku(), quantity: 1 }], couponId: 'FREE' };
    try {
      expect((await call(PLACE, { input }, asMember(m))).errors).toBeDefined();
    } finally {
      delete h.hooks.afterPlaced;
    }
    const orderId = orderIdFor(m, key);
    expect(await paymentsOf(orderId)).toHaveLength(0);
    const replay = await call(PLACE, { input }, asMember(m));
    expect(replay.data!.placeOrder).toMatchObject({ id: orderId, status: 'PAID', total: { amount: 0 } });
    expect(await paidMoves(orderId)).toBe(1);
  });

  test('an order that costs something is not settled at checkout', async () => {
    const m = newMember();
    const res = await call(PLACE, { input: { idempotencyKey: newKey(), lines: [{ skuId: sku(), quantity: 1 }] } }, asMember(m));
    expect(res.data!.placeOrder).toMatchObject({ status: 'PENDING_PAYMENT', total: { amount: 16800 }, payments: [] });
  });

  test('a refund of a zero-total order returns 0 without the provider, and its stock', async () => {
    const m = newMember();
    const order = await placeFree(m);
    const asked = await call(
      'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id amount { amount } } }',
      {
        i: { orderId: order.id, kind: 'REFUND_ONLY', lines: [{ skuId: sku(), quantity: 1 }], reason: '试用完毕', idempotencyKey: newKey() },
      },
      asMember(m),
    );
    expect(asked.data!.requestAfterSale.amount.amount).toBe(0);
    const approved = await call(
      'mutation($id: ID!) { approveAfterSale(input: { afterSaleId: $id }) { status } }',
      { id: asked.data!.requestAfterSale.id },
      asStaff(),
    );
    expect(approved.data!.approveAfterSale.status).toBe('REFUNDED');
    const after = await call(ORDER, { id: order.id }, asMember(m));
    expect(after.data!.order.status).toBe('REFUNDED');
    const refunded = (await outboxOf(h, order.id)).filter((e) => e.subject === 'orders.order.refunded');
    expect(refunded.map((e) => e.data)).toEqual([expect.objectContaining({ amount: 0, restock: [{ skuId: sku(), quantity: 1 }] })]);
    expect(await h.svc.db.collection('refunds').countDocuments({ orderId: order.id })).toBe(0);
  });
});
