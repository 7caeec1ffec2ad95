// GMV per live room through the gateway (real subgraphs, FerretDB and NATS): viewers enter, a
// member orders from the room and pays, the staff report counts it, a refund nets out, a
// redelivered paid event counts once, and only staff read the report.
import { randomUUID } from 'node:crypto';
import { envelope, type EventEnvelope } from '@flywheel/events';
import { eventually, gql } from '@flywheel/testing';
import type { RunningLive } from '../../../services/live/src/main';
import { asStaff, newCustomer, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const live = () => stack.subgraphs.live as RunningLive;
const staff = asStaff();
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const register = () => signUp(url(), { address: true });

const SALES =
  'sales { orders gmv { amount currency } refunded { amount } netGmv { amount } buyers viewers conversion topProducts(first: 3) { product { id } units gmv { amount currency } } }';
const REPORT = `query($id: ID!) { liveRoom(id: $id) { id ${SALES} } }`;
const ENTER = 'mutation($id: ID!, $v: String) { enterLiveRoom(roomId: $id, visitorId: $v) { id } }';
const report = async (id: string) => {
  const res = await gql(url(), REPORT, { id }, staff);
  expect(res.errors).toBeUndefined();
  return res.data!.liveRoom.sales;
};

test('viewers enter → a member buys from the live room → the report counts it → a refund nets out; a redelivery counts once', async () => {
  const product = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    {
      i: {
        name: `直播爆款 ${randomUUID().slice(0, 6)}`,
        status: 'ON_SALE',
        skus: [{ name: '标准', price: 2000, stock: 100, weightGrams: 500 }],
      },
    },
    staff,
  );
  expect(product.errors).toBeUndefined();
  const productId = product.data!.createProduct.id as string;
  const skuId = product.data!.createProduct.skus[0].id as string;

  const scheduled = await gql(
    url(),
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
    { i: { title: '带货直播', hostName: '小林', scheduledAt: new Date(Date.now() + 3600_000).toISOString(), productIds: [productId] } },
    staff,
  );
  const roomId = scheduled.data!.scheduleLiveRoom.id as string;
  expect(
    (await gql(url(), 'mutation($id: ID!) { startLiveRoom(id: $id) { status } }', { id: roomId }, staff)).data!.startLiveRoom.status,
  ).toBe('LIVE');

  // Viewers: a member (twice), a visitor (twice), another member: three unique viewers.
  const buyer = await register();
  const onlooker = newCustomer();
  const visitor = `visitor-${randomUUID()}`;
  for (const [headers, v] of [
    [buyer.headers, null],
    [buyer.headers, null],
    [{}, visitor],
    [{}, visitor],
    [onlooker.headers, null],
  ] as const) {
    const res = await gql(url(), ENTER, { id: roomId, v }, headers);
    expect(res.errors).toBeUndefined();
  }
  expect(code(await gql(url(), ENTER, { id: roomId, v: 'short' }))).toBe('BAD_USER_INPUT');
  expect(code(await gql(url(), ENTER, { id: roomId }))).toBe('BAD_USER_INPUT');
  expect(code(await gql(url(), ENTER, { id: '0123456789abcdef01234567', v: visitor }))).toBe('NOT_FOUND');
  expect(await report(roomId)).toMatchObject({ orders: 0, viewers: 3, buyers: 0, conversion: 0, gmv: { amount: 0, currency: 'CNY' } });

  // A real order from the room, paid through the test payment provider.
  const placed = await gql(
    url(),
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 2 }], source: { kind: 'LIVE', refId: roomId } } },
    buyer.headers,
  );
  expect(placed.errors).toBeUndefined();
  const order = placed.data!.placeOrder as { id: string; total: { amount: number } };
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: order.id }, buyer.headers);
  expect(intent.errors).toBeUndefined();
  const [delivery] = await stack.orders.payments.pay(intent.data!.payOrder.id);
  expect(delivery?.status).toBe(200);

  const total = order.total.amount;
  const counted = await eventually(async () => {
    const s = await report(roomId);
    return s.orders === 1 ? s : null;
  }, 20_000);
  expect(counted).toEqual({
    orders: 1,
    gmv: { amount: total, currency: 'CNY' },
    refunded: { amount: 0 },
    netGmv: { amount: total },
    buyers: 1,
    viewers: 3,
    conversion: 1 / 3,
    topProducts: [{ product: { id: productId }, units: 2, gmv: { amount: 4000, currency: 'CNY' } }],
  });

  // A redelivered paid event (the same envelope, published twice, and handed to the consumer
  // again as a redelivery past the stream's duplicate window would be) changes nothing.
  const env: EventEnvelope<'orders.order.paid'> = envelope(
    'orders.order.paid',
    {
      orderId: order.id,
      memberId: buyer.id,
      total,
      currency: 'CNY',
      lines: [{ skuId, productId, quantity: 2, unitPrice: 2000, priceKind: 'LIST' }],
      source: { kind: 'LIVE', roomId },
      paymentId: `redelivered-${randomUUID()}`,
      paidAt: new Date().toISOString(),
    },
    { id: randomUUID() },
  );
  await live().bus.publishEnvelope(env);
  await live().bus.publishEnvelope(env);
  const onPaid = live().modules.sales.on!['orders.order.paid']!;
  await onPaid(env);
  await onPaid(env);
  expect(await report(roomId)).toEqual(counted);

  // A refund (after-sale, approved by staff) nets out of the room's GMV.
  const req = await gql(
    url(),
    'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id } }',
    { i: { orderId: order.id, kind: 'REFUND_ONLY', lines: [{ skuId, quantity: 1 }], reason: '不想要了', idempotencyKey: randomUUID() } },
    buyer.headers,
  );
  expect(req.errors).toBeUndefined();
  const ok = await gql(
    url(),
    'mutation($id: ID!) { approveAfterSale(input: { afterSaleId: $id }) { status amount { amount } } }',
    { id: req.data!.requestAfterSale.id },
    staff,
  );
  expect(ok.data!.approveAfterSale.status).toBe('REFUNDED');
  const refunded = ok.data!.approveAfterSale.amount.amount as number;
  expect(refunded).toBeGreaterThan(0);
  const after = await eventually(async () => {
    const s = await report(roomId);
    return s.refunded.amount > 0 ? s : null;
  }, 20_000);
  expect(after).toMatchObject({
    orders: 1,
    gmv: { amount: total },
    refunded: { amount: refunded },
    netGmv: { amount: total - refunded },
    buyers: 1,
  });

  // Only staff read the report: a member is refused, a visitor must sign in; the room itself still reads.
  const asMember = await gql(url(), REPORT, { id: roomId }, buyer.headers);
  expect(code(asMember)).toBe('FORBIDDEN');
  expect(asMember.data?.liveRoom).toMatchObject({ id: roomId, sales: null });
  expect(code(await gql(url(), REPORT, { id: roomId }))).toBe('UNAUTHENTICATED');
});
