import {
  asMember,
  asStaff,
  client,
  ledgerOf,
  newMember,
  ORDER,
  outboxOf,
  paidOrder,
  placeOk,
  startHarness,
  type Harness,
  type Seeded,
} from './support';

// Short windows, so one test can watch them pass in real time: auto-confirm 2 s after shipping in
// full, after-sales open 4 s after delivery. The other sweeper tests pass the sweepers a clock.
const AUTO_CONFIRM_S = 2;
const WINDOW_S = 4;
let h: Harness;
let tea: Seeded;
beforeAll(async () => {
  h = await startHarness({
    env: { AUTO_CONFIRM_DAYS: String(AUTO_CONFIRM_S / 86_400), AFTER_SALE_WINDOW_DAYS: String(WINDOW_S / 86_400) },
  });
  tea = await h.seed('ON_SALE', [
    { price: 16800, stock: 5000 },
    { price: 9900, stock: 5000 },
  ]);
});
afterAll(() => h.stop());

const SHIP_FIELDS = 'id status shipments { id carrier trackingNumber lines { sku { id } quantity } shippedAt } history { from to by }';
const SHIP = `mutation($input: ShipOrderInput!) { shipOrder(input: $input) { ${SHIP_FIELDS} } }`;
const CONFIRM = 'mutation($id: ID!) { confirmDelivery(input: { orderId: $id }) { status history { from to by } } }';
const REQUEST = 'mutation($input: RequestAfterSaleInput!) { requestAfterSale(input: $input) { id status } }';
const REJECT = 'mutation($id: ID!) { rejectAfterSale(input: { afterSaleId: $id, note: "no" }) { status } }';

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;
const statusOf = async (orderId: string) => (await call(ORDER, { id: orderId }, asStaff())).data!.order.status;
const ship = (orderId: string, trackingNumber: string, lines?: { skuId: string; quantity: number }[]) =>
  call(SHIP, { input: { orderId, carrier: 'SF', trackingNumber, ...(lines ? { lines } : {}) } }, asStaff());
async function shipped(orderId: string, trackingNumber: string, lines?: { skuId: string; quantity: number }[]) {
  const res = await ship(orderId, trackingNumber, lines);
  if (res.errors) throw new Error(`shipOrder failed: ${JSON.stringify(res.errors)}`);
  return res.data!.shipOrder;
}
const A = () => tea.skus[0]!.id;
const B = () => tea.skus[1]!.id;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const afterSale = (orderId: string, skuId: string, key: string) => ({
  orderId,
  kind: 'REFUND_ONLY',
  lines: [{ skuId, quantity: 1 }],
  reason: '破损',
  idempotencyKey: key,
});

describe('shipments', () => {
  test('partial shipments: PARTIALLY_SHIPPED, then SHIPPED by the parcel that leaves nothing; one shipped event per parcel', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [
      { skuId: A(), quantity: 3 },
      { skuId: B(), quantity: 1 },
    ]);
    const first = await shipped(order.id, 'SF-1', [{ skuId: A(), quantity: 2 }]);
    expect(first.status).toBe('PARTIALLY_SHIPPED');
    // The same parcel again is a replay: nothing new is recorded.
    expect((await shipped(order.id, 'SF-1', [{ skuId: A(), quantity: 2 }])).shipments).toHaveLength(1);
    const second = await shipped(order.id, 'SF-2');
    expect(second.status).toBe('SHIPPED');
    expect(second.shipments).toEqual([
      {
        id: expect.any(String),
        carrier: 'SF',
        trackingNumber: 'SF-1',
        lines: [{ sku: { id: A() }, quantity: 2 }],
        shippedAt: expect.any(String),
      },
      {
        id: expect.any(String),
        carrier: 'SF',
        trackingNumber: 'SF-2',
        lines: [
          { sku: { id: A() }, quantity: 1 },
          { sku: { id: B() }, quantity: 1 },
        ],
        shippedAt: expect.any(String),
      },
    ]);
    expect(second.history.slice(1)).toEqual([
      { from: 'PENDING_PAYMENT', to: 'PAID', by: 'PAYMENT' },
      { from: 'PAID', to: 'PARTIALLY_SHIPPED', by: 'STAFF' },
      { from: 'PARTIALLY_SHIPPED', to: 'SHIPPED', by: 'STAFF' },
    ]);
    const events = (await outboxOf(h, order.id)).filter((e) => e.subject === 'orders.order.shipped');
    expect(events.map((e) => [e.data.trackingNumber, e.data.lines])).toEqual([
      ['SF-1', [{ skuId: A(), quantity: 2 }]],
      [
        'SF-2',
        [
          { skuId: A(), quantity: 1 },
          { skuId: B(), quantity: 1 },
        ],
      ],
    ]);
    expect(new Set(events.map((e) => e.data.shipmentId)).size).toBe(2);
    // Nothing is left: another parcel is CONFLICT.
    expect(code(await ship(order.id, 'SF-3'))).toBe('CONFLICT');
  });

  test('two parcels racing for the last units, 6 rounds: one ships, the other is refused', async () => {
    for (let round = 0; round < 6; round++) {
      const order = await paidOrder(h, newMember(), [{ skuId: A(), quantity: 1 }]);
      const results = await Promise.all([ship(order.id, `R${round}-a`), ship(order.id, `R${round}-b`)]);
      expect(results.map((r) => (r.errors ? code(r) : 'OK')).sort()).toEqual(['CONFLICT', 'OK']);
      expect((await ledgerOf(h, order.id)).filter((e) => e.op === 'SHIP')).toHaveLength(1);
      expect(await statusOf(order.id)).toBe('SHIPPED');
    }
  });

  test.each([
    ['a zero quantity', 'BAD_USER_INPUT', () => [{ skuId: A(), quantity: 0 }]],
    ['a negative quantity', 'BAD_USER_INPUT', () => [{ skuId: A(), quantity: -2 }]],
    ['a SKU not in the order', 'BAD_USER_INPUT', () => [{ skuId: B(), quantity: 1 }]],
    ['more than is left to ship', 'BAD_USER_INPUT', () => [{ skuId: A(), quantity: 3 }]],
  ])('a parcel with %s is %s and records nothing', async (_, expected, lines) => {
    const order = await paidOrder(h, newMember(), [{ skuId: A(), quantity: 2 }]);
    expect(code(await ship(order.id, 'BAD', lines()))).toBe(expected);
    expect((await ledgerOf(h, order.id)).filter((e) => e.op === 'SHIP')).toHaveLength(0);
    expect(await statusOf(order.id)).toBe('PAID');
  });

  test('an unpaid order cannot ship (CONFLICT); members cannot ship (FORBIDDEN)', async () => {
    const m = newMember();
    const unpaid = await placeOk(h, m, [{ skuId: A(), quantity: 1 }]);
    expect(code(await ship(unpaid.id, 'X'))).toBe('CONFLICT');
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 1 }]);
    const res = await call(SHIP, { input: { orderId: order.id, carrier: 'SF', trackingNumber: 'X' } }, asMember(m));
    expect(code(res)).toBe('FORBIDDEN');
    expect(await statusOf(order.id)).toBe('PAID');
  });
});

describe('delivery and completion', () => {
  test('the member confirms delivery (once); another member gets NOT_FOUND; before everything shipped it is CONFLICT', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 2 }]);
    await shipped(order.id, 'D-1', [{ skuId: A(), quantity: 1 }]);
    expect(code(await call(CONFIRM, { id: order.id }, asMember(m)))).toBe('CONFLICT');
    await shipped(order.id, 'D-2');
    expect(code(await call(CONFIRM, { id: order.id }, asMember(newMember())))).toBe('NOT_FOUND');
    expect(code(await call(CONFIRM, { id: order.id }, asStaff()))).toBe('FORBIDDEN');
    const [a, b] = await Promise.all([call(CONFIRM, { id: order.id }, asMember(m)), call(CONFIRM, { id: order.id }, asMember(m))]);
    expect([a.data!.confirmDelivery.status, b.data!.confirmDelivery.status]).toEqual(['DELIVERED', 'DELIVERED']);
    expect(a.data!.confirmDelivery.history.at(-1)).toEqual({ from: 'SHIPPED', to: 'DELIVERED', by: 'MEMBER' });
    expect((await outboxOf(h, order.id)).filter((e) => e.subject === 'orders.order.delivered')).toHaveLength(1);
  });

  test('in real time: auto-confirmed AUTO_CONFIRM_DAYS after shipping, after-sales close AFTER_SALE_WINDOW_DAYS after delivery, then completed', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 1 }]);
    await shipped(order.id, 'RT-1');
    await h.svc.service.autoConfirmDeliveries();
    expect(await statusOf(order.id)).toBe('SHIPPED');
    await sleep(AUTO_CONFIRM_S * 1000 + 200);
    await h.svc.service.autoConfirmDeliveries();
    const delivered = (await call(ORDER, { id: order.id }, asStaff())).data!.order;
    expect(delivered.status).toBe('DELIVERED');
    expect(delivered.history.at(-1)).toMatchObject({ from: 'SHIPPED', to: 'DELIVERED', by: 'SYSTEM' });

    // Inside the window an after-sale can be asked for (and rejected); after it, not.
    const req = await call(REQUEST, { input: afterSale(order.id, A(), 'rt-1') }, asMember(m));
    expect(req.data!.requestAfterSale.status).toBe('REQUESTED');
    await call(REJECT, { id: req.data!.requestAfterSale.id }, asStaff());
    await h.svc.service.completeDueOrders();
    expect(await statusOf(order.id)).toBe('DELIVERED');
    await sleep(WINDOW_S * 1000 + 200);
    expect(code(await call(REQUEST, { input: afterSale(order.id, A(), 'rt-2') }, asMember(m)))).toBe('CONFLICT');
    await h.svc.service.completeDueOrders();
    const done = (await call(ORDER, { id: order.id }, asStaff())).data!.order;
    expect(done.status).toBe('COMPLETED');
    expect(done.history.at(-1)).toMatchObject({ from: 'DELIVERED', to: 'COMPLETED', by: 'SYSTEM' });
    expect((await outboxOf(h, order.id)).map((e) => e.subject)).toEqual([
      'orders.order.paid',
      'orders.order.shipped',
      'orders.order.delivered',
      'orders.order.completed',
    ]);
  });

  test('sweepers racing each other and the member, with a clock: each order is delivered once and completed once', async () => {
    const m = newMember();
    const orders = await Promise.all([0, 1, 2].map(() => paidOrder(h, m, [{ skuId: B(), quantity: 1 }])));
    for (const [i, o] of orders.entries()) await shipped(o.id, `C-${i}`);
    const later = new Date(Date.now() + AUTO_CONFIRM_S * 1000 + 1000);
    await Promise.all([
      h.svc.service.autoConfirmDeliveries(later),
      h.svc.service.autoConfirmDeliveries(later),
      call(CONFIRM, { id: orders[0]!.id }, asMember(m)),
    ]);
    const muchLater = new Date(later.getTime() + WINDOW_S * 1000 + 1000);
    await Promise.all([h.svc.service.completeDueOrders(muchLater), h.svc.service.completeDueOrders(muchLater)]);
    for (const o of orders) {
      expect(await statusOf(o.id)).toBe('COMPLETED');
      const subjects = (await outboxOf(h, o.id)).map((e) => e.subject);
      expect(subjects.filter((s) => s === 'orders.order.delivered')).toHaveLength(1);
      expect(subjects.filter((s) => s === 'orders.order.completed')).toHaveLength(1);
    }
  });

  test('completion waits for an open after-sale, and happens once it is decided', async () => {
    const m = newMember();
    const order = await paidOrder(h, m, [{ skuId: A(), quantity: 2 }]);
    await shipped(order.id, 'W-1');
    await call(CONFIRM, { id: order.id }, asMember(m));
    const req = (await call(REQUEST, { input: afterSale(order.id, A(), 'w-1') }, asMember(m))).data!.requestAfterSale;
    const past = new Date(Date.now() + WINDOW_S * 1000 + 1000);
    await h.svc.service.completeDueOrders(past);
    expect(await statusOf(order.id)).toBe('DELIVERED');
    await call(REJECT, { id: req.id }, asStaff());
    await h.svc.service.completeDueOrders(past);
    expect(await statusOf(order.id)).toBe('COMPLETED');
  });
});
