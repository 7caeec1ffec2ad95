import { connect, StringCodec } from 'nats';
import { streamName } from '@flywheel/events';
import { eventually } from '@flywheel/testing';
import {
  asMember,
  asStaff,
  CANCEL,
  client,
  intentFor,
  newMember,
  ORDER,
  ORDER_FIELDS,
  PAY,
  placeOk,
  startHarness,
  transitionEvents,
  type Harness,
  type Seeded,
} from './support';

let h: Harness;
let tea: Seeded;
beforeAll(async () => {
  h = await startHarness();
  tea = await h.seed('ON_SALE', [
    { price: 16800, stock: 5000 },
    { price: 9900, stock: 5000 },
  ]);
});
afterAll(() => h.stop());

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
const place = (m: string, quantity = 1) => placeOk(h, m, [{ skuId: tea.skus[0]!.id, quantity }]);
const statusOf = async (orderId: string) => (await call(ORDER, { id: orderId }, asStaff())).data!.order.status;
const SHIP = `mutation($id: ID!) { shipOrder(input: { orderId: $id, carrier: "SF", trackingNumber: "SF123" }) { ${ORDER_FIELDS} } }`;
const DELIVERED = `mutation($id: ID!) { markOrderDelivered(input: { orderId: $id }) { ${ORDER_FIELDS} } }`;
const COMPLETE = `mutation($id: ID!) { completeOrder(input: { orderId: $id }) { ${ORDER_FIELDS} } }`;
const SEARCH =
  'query($status: OrderStatus, $memberId: ID, $from: DateTime, $to: DateTime, $first: Int, $after: String) { orders(status: $status, memberId: $memberId, from: $from, to: $to, first: $first, after: $after) { edges { node { id status } } pageInfo { hasNextPage endCursor } } }';

const later = <T>(ms: number, fn: () => Promise<T>) =>
  new Promise<T>((resolve, reject) => setTimeout(() => void fn().then(resolve, reject), ms));
/**
 * Runs both at once, giving one side a head start that grows with the round and alternates, so
 * the rounds see either order of arrival and the true race in between.
 */
const race = <A, B>(round: number, a: () => Promise<A>, b: () => Promise<B>) => {
  const d = Math.floor(round / 2) * 5;
  return Promise.all([round % 2 ? later(d, a) : a(), round % 2 ? b() : later(d, b)]);
};

/** The provider charges the member and notifies orders; resolves with the callback's answer. */
async function pay(orderId: string, member: string) {
  const intent = await intentFor(h, member, orderId);
  const [delivery] = await h.svc.payments.pay(intent.id);
  return delivery!;
}

/** Events of one order as published to JetStream (from the outbox relay). */
async function published(orderId: string) {
  const nc = await connect({ servers: h.nats.url });
  try {
    await h.svc.relay!.flush();
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(streamName('orders'));
    const envs: any[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(streamName('orders'), { seq }).catch(() => null);
      const env = m ? JSON.parse(StringCodec().decode(m.data)) : null;
      if (env?.data?.orderId === orderId) envs.push(env);
    }
    return envs;
  } finally {
    await nc.close();
  }
}

describe('the order state machine', () => {
  test('paid → shipped → delivered → completed, each move in the history with its event', async () => {
    const m = newMember();
    const order = await place(m, 2);
    expect((await pay(order.id, m)).status).toBe(200);
    expect((await call(SHIP, { id: order.id }, asStaff())).data!.shipOrder.status).toBe('SHIPPED');
    expect((await call(DELIVERED, { id: order.id }, asStaff())).data!.markOrderDelivered.status).toBe('DELIVERED');
    const done = (await call(COMPLETE, { id: order.id }, asMember(m))).data!.completeOrder;
    expect(done.status).toBe('COMPLETED');
    expect(done.payBy).toBeNull();
    expect(done.history).toEqual([
      { from: null, to: 'PENDING_PAYMENT', by: 'MEMBER', reason: null },
      { from: 'PENDING_PAYMENT', to: 'PAID', by: 'PAYMENT', reason: null },
      { from: 'PAID', to: 'SHIPPED', by: 'STAFF', reason: null },
      { from: 'SHIPPED', to: 'DELIVERED', by: 'STAFF', reason: null },
      { from: 'DELIVERED', to: 'COMPLETED', by: 'MEMBER', reason: null },
    ]);
    const events = await eventually(async () => {
      const envs = await published(order.id);
      return envs.length === 5 ? envs : null;
    });
    expect(events.map((e) => e.type)).toEqual([
      'orders.order.placed',
      'orders.order.paid',
      'orders.order.shipped',
      'orders.order.delivered',
      'orders.order.completed',
    ]);
    expect(events[1].data).toMatchObject({
      orderId: order.id,
      memberId: m,
      total: 2 * 16800,
      lines: [{ skuId: tea.skus[0]!.id, productId: tea.productId, quantity: 2, unitPrice: 16800, priceKind: 'LIST' }],
      source: { kind: 'DIRECT' },
      paymentId: expect.any(String),
    });
    expect(events[2].data).toMatchObject({ carrier: 'SF', trackingNumber: 'SF123', lines: [{ skuId: tea.skus[0]!.id, quantity: 2 }] });
  });

  test('moves out of order are CONFLICT; repeating the move just made answers the order', async () => {
    const m = newMember();
    const order = await place(m);
    expect((await call(SHIP, { id: order.id }, asStaff())).errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect((await call(COMPLETE, { id: order.id }, asMember(m))).errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect((await call(CANCEL, { id: order.id }, asMember(m))).data!.cancelOrder.status).toBe('CANCELLED');
    const again = await call(CANCEL, { id: order.id }, asMember(m));
    expect(again.data!.cancelOrder).toMatchObject({
      status: 'CANCELLED',
      history: [{ to: 'PENDING_PAYMENT' }, { to: 'CANCELLED', by: 'MEMBER', reason: 'MEMBER' }],
    });
    expect(await transitionEvents(h, order.id)).toEqual(['orders.order.cancelled']);
    expect((await call(PAY, { id: order.id }, asMember(m))).errors?.[0]?.extensions?.code).toBe('CONFLICT');
    // Members cannot ship; staff can cancel any unpaid order.
    const other = await place(m);
    expect((await call(SHIP, { id: other.id }, asMember(m))).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(CANCEL, { id: other.id }, asStaff())).data!.cancelOrder.history[1]).toMatchObject({ by: 'STAFF', reason: 'STAFF' });
  });

  test('the cancelled event carries the lines to release', async () => {
    const m = newMember();
    const order = await placeOk(h, m, [
      { skuId: tea.skus[0]!.id, quantity: 2 },
      { skuId: tea.skus[1]!.id, quantity: 1 },
    ]);
    await call(CANCEL, { id: order.id }, asMember(m));
    const [, cancelled] = await eventually(async () => {
      const envs = await published(order.id);
      return envs.length === 2 ? envs : null;
    });
    expect(cancelled).toMatchObject({ type: 'orders.order.cancelled', data: { orderId: order.id, memberId: m, reason: 'MEMBER' } });
    expect(cancelled.data.lines).toEqual(
      expect.arrayContaining([
        { skuId: tea.skus[0]!.id, quantity: 2 },
        { skuId: tea.skus[1]!.id, quantity: 1 },
      ]),
    );
  });

  test('paid and cancelled racing, 10 rounds: exactly one wins each time; a payment that lost is refunded', async () => {
    for (let round = 0; round < 10; round++) {
      const m = newMember();
      const order = await place(m);
      const intent = await intentFor(h, m, order.id);
      const charge = await h.svc.payments.capture(intent.id);
      const [delivery, cancel] = await race(
        round,
        () => h.svc.payments.deliver(charge),
        () => call(CANCEL, { id: order.id }, asMember(m)),
      );
      expect(delivery.status).toBe(200);
      const events = await transitionEvents(h, order.id);
      expect(events).toHaveLength(1);
      const refunds = await h.svc.payments.refundsOf(charge.txnId);
      if (events[0] === 'orders.order.paid') {
        expect(cancel.errors?.[0]?.extensions?.code).toBe('CONFLICT');
        expect(JSON.parse(delivery.body).outcome).toBe('PAID');
        expect(refunds).toEqual([]);
        expect(await statusOf(order.id)).toBe('PAID');
      } else {
        expect(events).toEqual(['orders.order.cancelled']);
        expect(cancel.data!.cancelOrder.status).toBe('CANCELLED');
        expect(JSON.parse(delivery.body).outcome).toBe('REFUNDED');
        expect(refunds).toEqual([{ refundId: expect.any(String), amount: 16800 }]);
        expect(await statusOf(order.id)).toBe('CANCELLED');
      }
    }
  });
});

describe('unpaid orders', () => {
  test('an order still unpaid after ORDER_PAYMENT_TIMEOUT_SECONDS is cancelled by the sweeper (EXPIRED), once', async () => {
    const m = newMember();
    const order = await place(m);
    const placedAt = new Date(order.createdAt);
    expect(new Date(order.payBy).getTime() - placedAt.getTime()).toBe(900_000);
    expect(await h.svc.service.cancelUnpaid(new Date(placedAt.getTime() + 899_000))).toBe(0);
    expect(await statusOf(order.id)).toBe('PENDING_PAYMENT');

    const due = new Date(placedAt.getTime() + 901_000);
    await Promise.all([h.svc.service.cancelUnpaid(due), h.svc.service.cancelUnpaid(due)]);
    const read = (await call(ORDER, { id: order.id }, asMember(m))).data!.order;
    expect(read).toMatchObject({ status: 'CANCELLED', payBy: null });
    expect(read.history[1]).toEqual({ from: 'PENDING_PAYMENT', to: 'CANCELLED', by: 'SYSTEM', reason: 'EXPIRED' });
    expect(await transitionEvents(h, order.id)).toEqual(['orders.order.cancelled']);
    expect((await call(PAY, { id: order.id }, asMember(m))).errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  test('the sweeper racing a payment, 10 rounds: one outcome each time, and a payment that lost is refunded', async () => {
    for (let round = 0; round < 10; round++) {
      const m = newMember();
      const order = await place(m);
      const intent = await intentFor(h, m, order.id);
      const charge = await h.svc.payments.capture(intent.id);
      const due = new Date(new Date(order.createdAt).getTime() + 901_000);
      const [delivery] = await race(
        round,
        () => h.svc.payments.deliver(charge),
        () => h.svc.service.cancelUnpaid(due),
      );
      const events = await transitionEvents(h, order.id);
      expect(events).toHaveLength(1);
      const outcome = JSON.parse(delivery.body).outcome;
      expect(outcome).toBe(events[0] === 'orders.order.paid' ? 'PAID' : 'REFUNDED');
      expect((await h.svc.payments.refundsOf(charge.txnId)).length).toBe(outcome === 'REFUNDED' ? 1 : 0);
    }
  });
});

describe('who sees and moves an order', () => {
  test("another member's order id is NOT_FOUND in every query and mutation", async () => {
    const owner = newMember();
    const stranger = newMember();
    const order = await place(owner);
    for (const [q, field] of [
      [ORDER, 'order'],
      [CANCEL, 'cancelOrder'],
      [PAY, 'payOrder'],
      [COMPLETE, 'completeOrder'],
    ] as const) {
      const res = await call(q, { id: order.id }, asMember(stranger));
      expect([field, res.errors?.[0]?.extensions?.code]).toEqual([field, 'NOT_FOUND']);
    }
    expect(await statusOf(order.id)).toBe('PENDING_PAYMENT');
    expect(await h.svc.db.collection('payment_intents').countDocuments({ orderId: order.id })).toBe(0);
  });

  test('staff search orders by status, member and time, newest first; customers are FORBIDDEN', async () => {
    const m = newMember();
    const a = await place(m);
    const b = await place(m);
    const c = await place(m);
    await call(CANCEL, { id: b.id }, asMember(m));
    const search = async (vars: Record<string, unknown>) => {
      const res = await call(SEARCH, vars, asStaff());
      expect(res.errors).toBeUndefined();
      return res.data!.orders.edges.map((e: any) => e.node.id);
    };
    expect(await search({ memberId: m })).toEqual([c.id, b.id, a.id]);
    expect(await search({ memberId: m, status: 'PENDING_PAYMENT' })).toEqual([c.id, a.id]);
    expect(await search({ memberId: m, status: 'CANCELLED' })).toEqual([b.id]);
    expect(await search({ memberId: m, from: b.createdAt })).toEqual([c.id, b.id]);
    expect(await search({ memberId: m, to: b.createdAt })).toEqual([a.id]);
    const page = (await call(SEARCH, { memberId: m, first: 2 }, asStaff())).data!.orders;
    expect(page.pageInfo.hasNextPage).toBe(true);
    expect(await search({ memberId: m, first: 2, after: page.pageInfo.endCursor })).toEqual([a.id]);
    expect((await call(SEARCH, { memberId: m }, asMember(m))).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
