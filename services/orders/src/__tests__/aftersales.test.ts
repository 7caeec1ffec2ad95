import { eventually } from '@flywheel/testing';
import {
  asMember,
  asStaff,
  client,
  intentFor,
  ledgerOf,
  newMember,
  ORDER,
  outboxOf,
  paidOrder,
  placeOk,
  startHarness,
  txnOf,
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

const FIELDS =
  'id kind status lines { sku { id } quantity amount { amount currency } } amount { amount currency } reason note createdAt refundedAt order { id status }';
const REQUEST = `mutation($input: RequestAfterSaleInput!) { requestAfterSale(input: $input) { ${FIELDS} } }`;
const APPROVE = `mutation($id: ID!, $note: String) { approveAfterSale(input: { afterSaleId: $id, note: $note }) { ${FIELDS} } }`;
const REJECT = `mutation($id: ID!, $note: String!) { rejectAfterSale(input: { afterSaleId: $id, note: $note }) { ${FIELDS} } }`;
const RECEIVE = `mutation($id: ID!) { receiveReturn(input: { afterSaleId: $id }) { ${FIELDS} } }`;
const SHIP = 'mutation($id: ID!, $t: String!) { shipOrder(input: { orderId: $id, carrier: "SF", trackingNumber: $t }) { status } }';
const CONFIRM = 'mutation($id: ID!) { confirmDelivery(input: { orderId: $id }) { status } }';
const ORDER_AFTER_SALES = `query($id: ID!) { order(id: $id) { status refunded { amount } afterSales { ${FIELDS} } history { from to by } } }`;
const LIST =
  'query($status: AfterSaleStatus, $first: Int, $after: String) { afterSales(status: $status, first: $first, after: $after) { edges { node { id status order { id } } } pageInfo { hasNextPage endCursor } } }';

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
let keySeq = 0;
const input = (orderId: string, lines: { skuId: string; quantity: number }[], over: Record<string, unknown> = {}) => ({
  orderId,
  kind: 'REFUND_ONLY',
  lines,
  reason: '不想要了',
  idempotencyKey: `after-sale-${++keySeq}`,
  ...over,
});
async function requested(member: string, vars: Record<string, unknown>) {
  const res = await call(REQUEST, { input: vars }, asMember(member));
  if (res.errors) throw new Error(`requestAfterSale failed: ${JSON.stringify(res.errors)}`);
  return res.data!.requestAfterSale;
}
async function staffDoes(query: string, vars: Record<string, unknown>) {
  const res = await call(query, vars, asStaff());
  if (res.errors) throw new Error(`staff mutation failed: ${JSON.stringify(res.errors)}`);
  return Object.values(res.data!)[0] as any;
}
const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;
const refundsOf = async (orderId: string) => h.svc.payments.refundsOf(await txnOf(h, orderId));
const refundedEvents = async (orderId: string) => (await outboxOf(h, orderId)).filter((e) => e.subject === 'orders.order.refunded');
async function shippedAndDelivered(member: string, orderId: string) {
  expect((await call(SHIP, { id: orderId, t: `SF-${orderId}` }, asStaff())).data!.shipOrder.status).toBe('SHIPPED');
  expect((await call(CONFIRM, { id: orderId }, asMember(member))).data!.confirmDelivery.status).toBe('DELIVERED');
}
const A = () => tea.skus[0]!.id;
const B = () => tea.skus[1]!.id;

describe('refunds', () => {
  test('a partial refund, then the rest: amounts from the paid prices, money back once each, and the order ends REFUNDED', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [
      { skuId: A(), quantity: 3 },
      { skuId: B(), quantity: 1 },
    ]);
    await shippedAndDelivered(m, order.id);

    // Prices never come from the client: the request names units, the server prices them.
    const first = await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
    expect(first).toMatchObject({
      kind: 'REFUND_ONLY',
      status: 'REQUESTED',
      amount: { amount: 16800, currency: 'CNY' },
      lines: [{ sku: { id: A() }, quantity: 1, amount: { amount: 16800 } }],
      refundedAt: null,
      order: { id: order.id, status: 'DELIVERED' },
    });
    const done = await staffDoes(APPROVE, { id: first.id, note: '同意' });
    expect(done).toMatchObject({ status: 'REFUNDED', note: '同意', refundedAt: expect.any(String), order: { status: 'DELIVERED' } });
    expect(await refundsOf(order.id)).toEqual([{ refundId: `aftersale:${first.id}`, amount: 16800 }]);

    const rest = await requested(
      m,
      input(order.id, [
        { skuId: A(), quantity: 2 },
        { skuId: B(), quantity: 1 },
      ]),
    );
    expect(rest.amount.amount).toBe(2 * 16800 + 9900);
    expect((await staffDoes(APPROVE, { id: rest.id })).status).toBe('REFUNDED');

    const after = (await call(ORDER_AFTER_SALES, { id: order.id }, asMember(m))).data!.order;
    expect(after.status).toBe('REFUNDED');
    expect(after.refunded.amount).toBe(order.total.amount);
    expect(after.afterSales.map((s: any) => [s.id, s.status])).toEqual([
      [first.id, 'REFUNDED'],
      [rest.id, 'REFUNDED'],
    ]);
    expect(after.history.at(-1)).toEqual({ from: 'DELIVERED', to: 'REFUNDED', by: 'SYSTEM' });
    expect((await refundsOf(order.id)).reduce((s, r) => s + r.amount, 0)).toBe(order.total.amount);
    expect((await refundedEvents(order.id)).map((e) => e.data.amount)).toEqual([16800, 2 * 16800 + 9900]);
    // Nothing is left: asking again is refused and changes nothing.
    const again = await call(REQUEST, { input: input(order.id, [{ skuId: A(), quantity: 1 }]) }, asMember(m));
    expect(code(again)).toBe('CONFLICT');
  });

  test('two requests racing for the last refundable unit, 6 rounds: one lands, the other is BAD_USER_INPUT', async () => {
    for (let round = 0; round < 6; round++) {
      const m = newMember();
      const order = await paidOrder(h, m, [{ skuId: A(), quantity: 2 }]);
      await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
      const results = await Promise.all([
        call(REQUEST, { input: input(order.id, [{ skuId: A(), quantity: 1 }]) }, asMember(m)),
        call(REQUEST, { input: input(order.id, [{ skuId: A(), quantity: 1 }]) }, asMember(m)),
      ]);
      expect(results.map((r) => (r.errors ? code(r) : 'OK')).sort()).toEqual(['BAD_USER_INPUT', 'OK']);
      const requests = (await ledgerOf(h, order.id)).filter((e) => e.op === 'AFTER_SALE_REQUEST');
      expect(requests).toHaveLength(2);
      expect(await h.svc.db.collection('after_sales').countDocuments({ orderId: order.id })).toBe(2);
    }
  });

  test('approve called twice at once, 6 rounds: money goes back through the provider once, one refunded event', async () => {
    for (let round = 0; round < 6; round++) {
      const m = newMember();
      const order = await paidOrder(h, m, [{ skuId: B(), quantity: 2 }]);
      const req = await requested(m, input(order.id, [{ skuId: B(), quantity: 1 }]));
      const [a, b] = await Promise.all([call(APPROVE, { id: req.id }, asStaff()), call(APPROVE, { id: req.id }, asStaff())]);
      expect([a.errors, b.errors]).toEqual([undefined, undefined]);
      expect(await refundsOf(order.id)).toEqual([{ refundId: `aftersale:${req.id}`, amount: 9900 }]);
      expect(await refundedEvents(order.id)).toHaveLength(1);
      expect((await ledgerOf(h, order.id)).filter((e) => e.op === 'AFTER_SALE_APPROVE')).toHaveLength(1);
      const read = (await call(ORDER_AFTER_SALES, { id: order.id }, asStaff())).data!.order;
      expect(read).toMatchObject({ status: 'PAID', refunded: { amount: 9900 } });
    }
  });

  test('a replay with the same key answers the first request; the same key for something else is CONFLICT', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 2 }]);
    const vars = input(order.id, [{ skuId: A(), quantity: 1 }]);
    const [first, second] = await Promise.all([requested(m, vars), requested(m, vars)]);
    expect(second).toEqual(first);
    expect(code(await call(REQUEST, { input: { ...vars, lines: [{ skuId: A(), quantity: 2 }] } }, asMember(m)))).toBe('CONFLICT');
    expect((await ledgerOf(h, order.id)).filter((e) => e.op === 'AFTER_SALE_REQUEST')).toHaveLength(1);
  });
});

describe('returns and stock', () => {
  test('a return: approved, then goods received, then refunded; the event restocks the returned units and catalog takes them back', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 2 }]);
    await shippedAndDelivered(m, order.id);
    const req = await requested(m, input(order.id, [{ skuId: A(), quantity: 2 }], { kind: 'RETURN_AND_REFUND', reason: '尺码不合适' }));
    // Goods before approval, or twice, are refused; approval alone returns no money.
    expect(code(await call(RECEIVE, { id: req.id }, asStaff()))).toBe('CONFLICT');
    expect((await staffDoes(APPROVE, { id: req.id })).status).toBe('APPROVED');
    expect(await refundsOf(order.id)).toEqual([]);
    await h.svc.relay!.flush();
    await eventually(async () => (await h.available(A())) > 0 && true);
    const before = await h.available(A());

    const received = await staffDoes(RECEIVE, { id: req.id });
    expect(received).toMatchObject({ status: 'REFUNDED', order: { status: 'REFUNDED' } });
    expect((await staffDoes(RECEIVE, { id: req.id })).status).toBe('REFUNDED');
    expect(await refundsOf(order.id)).toEqual([{ refundId: `aftersale:${req.id}`, amount: 2 * 16800 }]);
    const [event] = await refundedEvents(order.id);
    expect(event!.data).toEqual({
      orderId: order.id,
      memberId: m,
      refundId: `aftersale:${req.id}`,
      amount: 2 * 16800,
      currency: 'CNY',
      restock: [{ skuId: A(), quantity: 2 }],
      refundedAt: expect.any(String),
    });
    await eventually(async () => (await h.available(A())) === before + 2);
    // Redelivery-proof at catalog: it restocks once per refund id.
    await h.svc.relay!.flush();
    expect(await h.available(A())).toBe(before + 2);
  });

  test('a refund-only of delivered goods restocks nothing; receiving goods for it is BAD_USER_INPUT', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: B(), quantity: 1 }]);
    await shippedAndDelivered(m, order.id);
    const before = await h.available(B());
    const req = await requested(m, input(order.id, [{ skuId: B(), quantity: 1 }]));
    expect(code(await call(RECEIVE, { id: req.id }, asStaff()))).toBe('BAD_USER_INPUT');
    expect((await staffDoes(APPROVE, { id: req.id })).status).toBe('REFUNDED');
    const [event] = await refundedEvents(order.id);
    expect(event!.data.restock).toEqual([]);
    await h.svc.relay!.flush();
    expect(await h.available(B())).toBe(before);
  });

  test('a refund-only before shipping: those units never ship, go back to stock, and the order ships in full without them', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 3 }]);
    const before = await h.available(A());
    const req = await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
    // While the after-sale decides about an unshipped unit, the order cannot count as shipped.
    expect((await call(SHIP, { id: order.id, t: 'SF-A' }, asStaff())).data!.shipOrder.status).toBe('PARTIALLY_SHIPPED');
    const done = await staffDoes(APPROVE, { id: req.id });
    expect(done).toMatchObject({ status: 'REFUNDED', order: { status: 'SHIPPED' } });
    const shipped = (await outboxOf(h, order.id)).find((e) => e.subject === 'orders.order.shipped')!;
    expect(shipped.data.lines).toEqual([{ skuId: A(), quantity: 2 }]);
    expect((await refundedEvents(order.id))[0]!.data.restock).toEqual([{ skuId: A(), quantity: 1 }]);
    await eventually(async () => (await h.available(A())) === before + 1);
  });
});

describe('decisions', () => {
  test('a rejection is claimed once and gives the units back; an approval after it is CONFLICT', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 1 }]);
    const req = await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
    const [r1, r2] = await Promise.all([
      call(REJECT, { id: req.id, note: '商品无质量问题' }, asStaff()),
      call(REJECT, { id: req.id, note: '商品无质量问题' }, asStaff()),
    ]);
    expect([r1.data!.rejectAfterSale.status, r2.data!.rejectAfterSale.status]).toEqual(['REJECTED', 'REJECTED']);
    expect(r1.data!.rejectAfterSale.note).toBe('商品无质量问题');
    expect((await ledgerOf(h, order.id)).filter((e) => e.op === 'AFTER_SALE_REJECT')).toHaveLength(1);
    expect(code(await call(APPROVE, { id: req.id }, asStaff()))).toBe('CONFLICT');
    expect(await refundsOf(order.id)).toEqual([]);
    // The unit is refundable again.
    const again = await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
    expect(again.status).toBe('REQUESTED');
    expect(code(await call(REJECT, { id: again.id, note: '' }, asStaff()))).toBe('BAD_USER_INPUT');
  });

  test('approve racing reject, 6 rounds: exactly one decision lands', async () => {
    for (let round = 0; round < 6; round++) {
      const m = newMember();
      const order = await paidOrder(h, m, [{ skuId: B(), quantity: 1 }]);
      const req = await requested(m, input(order.id, [{ skuId: B(), quantity: 1 }]));
      const [a, r] = await Promise.all([call(APPROVE, { id: req.id }, asStaff()), call(REJECT, { id: req.id, note: 'no' }, asStaff())]);
      const decisions = (await ledgerOf(h, order.id)).filter((e) => ['AFTER_SALE_APPROVE', 'AFTER_SALE_REJECT'].includes(e.op));
      expect(decisions).toHaveLength(1);
      if (decisions[0]!.op === 'AFTER_SALE_APPROVE') {
        expect([a.data?.approveAfterSale.status, code(r)]).toEqual(['REFUNDED', 'CONFLICT']);
        expect(await refundsOf(order.id)).toHaveLength(1);
      } else {
        expect([code(a), r.data?.rejectAfterSale.status]).toEqual(['CONFLICT', 'REJECTED']);
        expect(await refundsOf(order.id)).toHaveLength(0);
      }
    }
  });

  test('a refund the provider did not confirm is retried by the sweeper, once', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 1 }]);
    const req = await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
    const refund = h.svc.payments.refund;
    h.svc.payments.refund = async () => {
      throw new Error('provider unavailable');
    };
    try {
      expect((await staffDoes(APPROVE, { id: req.id })).status).toBe('APPROVED');
    } finally {
      h.svc.payments.refund = refund;
    }
    expect(await h.svc.service.sweepAfterSales(new Date())).toMatchObject({ refunded: 0 });
    const later = new Date(Date.now() + 31_000);
    const passes = await Promise.all([h.svc.service.sweepAfterSales(later), h.svc.service.sweepAfterSales(later)]);
    expect(passes.reduce((s, p) => s + p.refunded, 0)).toBe(1);
    expect(await refundsOf(order.id)).toEqual([{ refundId: `aftersale:${req.id}`, amount: 16800 }]);
    expect(await refundedEvents(order.id)).toHaveLength(1);
    expect((await call(ORDER_AFTER_SALES, { id: order.id }, asMember(m))).data!.order.status).toBe('REFUNDED');
  });

  test('a request whose projection was lost is listed again after the sweeper runs', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 1 }]);
    const req = await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
    await h.svc.db.collection('after_sales').deleteOne({ _id: req.id as any });
    expect(code(await call(APPROVE, { id: req.id }, asStaff()))).toBe('NOT_FOUND');
    expect((await h.svc.service.sweepAfterSales(new Date(Date.now() + 31_000))).recovered).toBeGreaterThanOrEqual(1);
    expect((await staffDoes(APPROVE, { id: req.id })).status).toBe('REFUNDED');
  });

  test('staff list after-sales by status, newest first, page by page; customers are FORBIDDEN', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 3 }]);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]))).id);
    await staffDoes(REJECT, { id: ids[1], note: 'no' });
    const page = (await call(LIST, { status: 'REQUESTED', first: 1 }, asStaff())).data!.afterSales;
    expect(page.edges.map((e: any) => e.node.id)).toEqual([ids[2]]);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const next = (await call(LIST, { status: 'REQUESTED', first: 1, after: page.pageInfo.endCursor }, asStaff())).data!.afterSales;
    expect(next.edges[0].node).toEqual({ id: ids[0], status: 'REQUESTED', order: { id: order.id } });
    const rejected = (await call(LIST, { status: 'REJECTED', first: 100 }, asStaff())).data!.afterSales.edges.map((e: any) => e.node.id);
    expect(rejected).toContain(ids[1]);
    expect(code(await call(LIST, {}, asMember(m)))).toBe('FORBIDDEN');
    const own = await call(`query($id: ID!) { afterSale(id: $id) { id status } }`, { id: ids[1] }, asMember(m));
    expect(own.data!.afterSale).toEqual({ id: ids[1], status: 'REJECTED' });
    const stranger = await call(`query($id: ID!) { afterSale(id: $id) { id } }`, { id: ids[1] }, asMember(newMember()));
    expect(code(stranger)).toBe('NOT_FOUND');
  });
});

describe('bad after-sale input changes nothing', () => {
  let m: string;
  let order: { id: string };
  beforeAll(async () => {
    m = newMember();
    order = await paidOrder(h, m, [{ skuId: A(), quantity: 2 }]);
    await requested(m, input(order.id, [{ skuId: A(), quantity: 1 }]));
  });
  const state = async () => ({
    entries: (await ledgerOf(h, order.id)).length,
    afterSales: await h.svc.db.collection('after_sales').countDocuments({ orderId: order.id }),
  });

  test.each([
    ['a zero quantity', 'BAD_USER_INPUT', () => ({ lines: [{ skuId: A(), quantity: 0 }] })],
    ['a negative quantity', 'BAD_USER_INPUT', () => ({ lines: [{ skuId: A(), quantity: -1 }] })],
    ['no lines', 'BAD_USER_INPUT', () => ({ lines: [] })],
    ['a SKU not in the order', 'BAD_USER_INPUT', () => ({ lines: [{ skuId: B(), quantity: 1 }] })],
    ['more than remains refundable', 'BAD_USER_INPUT', () => ({ lines: [{ skuId: A(), quantity: 2 }] })],
    ['a return of goods that never shipped', 'BAD_USER_INPUT', () => ({ kind: 'RETURN_AND_REFUND', lines: [{ skuId: A(), quantity: 1 }] })],
    ['an empty reason', 'BAD_USER_INPUT', () => ({ reason: '  ', lines: [{ skuId: A(), quantity: 1 }] })],
    ['an unknown order', 'NOT_FOUND', () => ({ orderId: 'no-such-order', lines: [{ skuId: A(), quantity: 1 }] })],
  ])('%s is %s', async (_, expected, over) => {
    const before = await state();
    const res = await call(REQUEST, { input: input(order.id, [], over()) }, asMember(m));
    expect(code(res)).toBe(expected);
    expect(await state()).toEqual(before);
  });

  test("another member's order is NOT_FOUND; staff cannot request one (FORBIDDEN)", async () => {
    const before = await state();
    const vars = { input: input(order.id, [{ skuId: A(), quantity: 1 }]) };
    expect(code(await call(REQUEST, vars, asMember(newMember())))).toBe('NOT_FOUND');
    expect(code(await call(REQUEST, vars, asStaff()))).toBe('FORBIDDEN');
    expect(await state()).toEqual(before);
  });

  test('an unpaid order, or a cancelled one, is CONFLICT', async () => {
    const unpaid = await placeOk(h, m, [{ skuId: A(), quantity: 1 }]);
    expect(code(await call(REQUEST, { input: input(unpaid.id, [{ skuId: A(), quantity: 1 }]) }, asMember(m)))).toBe('CONFLICT');
    await intentFor(h, m, unpaid.id);
    await call('mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { id } }', { id: unpaid.id }, asMember(m));
    expect(code(await call(REQUEST, { input: input(unpaid.id, [{ skuId: A(), quantity: 1 }]) }, asMember(m)))).toBe('CONFLICT');
    expect((await ledgerOf(h, unpaid.id)).filter((e) => e.op === 'AFTER_SALE_REQUEST')).toHaveLength(0);
    expect((await call(ORDER, { id: unpaid.id }, asMember(m))).data!.order.status).toBe('CANCELLED');
  });

  test('decisions by a customer are FORBIDDEN; an unknown after-sale is NOT_FOUND', async () => {
    const id = (await h.svc.db.collection('after_sales').findOne({ orderId: order.id }))!._id;
    const before = await state();
    expect(code(await call(APPROVE, { id }, asMember(m)))).toBe('FORBIDDEN');
    expect(code(await call(REJECT, { id, note: 'x' }, asMember(m)))).toBe('FORBIDDEN');
    expect(code(await call(RECEIVE, { id }, asMember(m)))).toBe('FORBIDDEN');
    expect(code(await call(APPROVE, { id: 'no-such-after-sale' }, asStaff()))).toBe('NOT_FOUND');
    expect(await state()).toEqual(before);
    expect(await refundsOf(order.id)).toEqual([]);
  });
});
