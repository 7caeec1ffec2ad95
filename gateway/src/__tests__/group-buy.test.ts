// Group buy (拼团) through the gateway on the real stack (FerretDB, NATS, every subgraph): a group of 3
// fills with exactly 3 paid members however many join at once (the rest GROUP_FULL, free to open a
// group of their own), its orders wait unshippable until it succeeds; a group that expires unfilled
// refunds every paid member once and puts the stock back; an unpaid join frees its slot when its
// payment times out; bad input is refused with nothing written.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import {
  asStaff,
  createTestProduct,
  errorCode,
  errorReason,
  newCustomer,
  startInProcessStack,
  type InProcessStack,
} from './in-process-stack';

jest.setTimeout(240_000);

let stack: InProcessStack;
let offset = 0;
const clock = () => new Date(Date.now() + offset);
const staff = asStaff();
const url = () => stack.gateway.url;
const PRICE = 5900;
const GROUP_PRICE = 3900;
type Customer = ReturnType<typeof newCustomer>;

let product: { productId: string; skuId: string };
let offerId: string;

const OFFER = 'mutation($i: CreateGroupBuyOfferInput!) { createGroupBuyOffer(input: $i) { id groupSize groupPrice listPrice active } }';
const PLACE =
  'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status groupBuy { groupId state } adjustments { kind amount { amount } } } }';
const GROUP = 'query($id: ID!) { groupBuy(id: $id) { id memberCount slotsTaken status groupSize leader { id } } }';
const ORDER = 'query($id: ID!) { order(id: $id) { id status groupBuy { groupId state } history { to } } }';

const offerInput = (over: Record<string, unknown> = {}) => ({
  skuId: product.skuId,
  groupSize: 3,
  groupPrice: GROUP_PRICE,
  durationMinutes: 60,
  startsAt: new Date(Date.now() - 60_000).toISOString(),
  endsAt: new Date(Date.now() + 86_400_000).toISOString(),
  stockCap: 60,
  perMemberLimit: 3,
  virtualCompletion: false,
  idempotencyKey: randomUUID(),
  ...over,
});

beforeAll(async () => {
  stack = await startInProcessStack({}, { referral: clock });
  product = await createTestProduct(url(), staff, { price: PRICE, stock: 100 });
  const res = await gql(url(), OFFER, { i: offerInput() }, staff);
  expect(res.errors).toBeUndefined();
  offerId = res.data!.createGroupBuyOffer.id;
  expect(res.data!.createGroupBuyOffer).toMatchObject({ groupSize: 3, groupPrice: GROUP_PRICE, listPrice: PRICE, active: true });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

const place = (c: Customer, groupId?: string) =>
  gql(
    url(),
    PLACE,
    {
      i: {
        idempotencyKey: randomUUID(),
        lines: [{ skuId: product.skuId, quantity: 1 }],
        referralOffer: { groupBuy: { offerId, groupId } },
      },
    },
    c.headers,
  );

async function pay(c: Customer, orderId: string) {
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: orderId }, c.headers);
  expect(intent.errors).toBeUndefined();
  expect((await stack.orders.payments.pay(intent.data!.payOrder.id))[0]?.status).toBe(200);
}

/** Opens a group and pays for it: the leader's order and the group's id. */
async function openPaid(leader: Customer) {
  const opened = await place(leader);
  expect(opened.errors).toBeUndefined();
  const order = opened.data!.placeOrder;
  expect(order.groupBuy.state).toBe('GROUPING');
  expect(order.adjustments).toContainEqual({ kind: 'GROUP_BUY', amount: { amount: GROUP_PRICE - PRICE } });
  await pay(leader, order.id);
  return { orderId: order.id as string, groupId: order.groupBuy.groupId as string };
}

const group = async (id: string) => (await gql(url(), GROUP, { id }, staff)).data!.groupBuy;
const order = async (id: string) => (await gql(url(), ORDER, { id }, staff)).data!.order;
const available = async () =>
  (await gql(url(), 'query($id: ID!) { product(id: $id) { skus { stock { available } } } }', { id: product.productId }, staff)).data!
    .product.skus[0].stock.available as number;
const ship = (orderId: string) =>
  gql(
    url(),
    'mutation($i: ShipOrderInput!) { shipOrder(input: $i) { id status } }',
    { i: { orderId, carrier: 'SF', trackingNumber: `SF${randomUUID().slice(0, 10)}` } },
    staff,
  );

test('ten members racing to join a group of 3: exactly 3 paid members, the rest GROUP_FULL and free to open a group; it succeeds and only then ships', async () => {
  const leader = newCustomer();
  const { orderId: leaderOrder, groupId } = await openPaid(leader);
  await eventually(async () => (await group(groupId)).memberCount === 1);
  // Paid but waiting for the group: not shippable, not in the staff's PAID list.
  const early = await ship(leaderOrder);
  expect(errorCode(early)).toBe('CONFLICT');
  expect(errorReason(early)).toBe('GROUPING');
  const listed = await gql(url(), '{ orders(status: PAID, first: 100) { edges { node { id } } } }', {}, staff);
  expect(listed.data!.orders.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(leaderOrder);

  const joiners = Array.from({ length: 10 }, () => newCustomer());
  const results = await Promise.all(joiners.map((j) => place(j, groupId)));
  const joined = results.flatMap((r, i) => (r.data?.placeOrder ? [{ c: joiners[i]!, id: r.data.placeOrder.id as string }] : []));
  const refused = results.flatMap((r, i) => (r.errors ? [{ c: joiners[i]!, r }] : []));
  expect(joined).toHaveLength(2);
  expect(refused).toHaveLength(8);
  for (const { r } of refused) expect([errorCode(r), errorReason(r)]).toEqual(['CONFLICT', 'GROUP_FULL']);
  expect(await group(groupId)).toMatchObject({ slotsTaken: 3, status: 'OPEN', leader: { id: leader.id } });

  // A refused member opens a group of their own.
  const own = await place(refused[0]!.c);
  expect(own.errors).toBeUndefined();
  expect(own.data!.placeOrder.groupBuy.groupId).not.toBe(groupId);

  for (const j of joined) await pay(j.c, j.id);
  await eventually(async () => (await group(groupId)).status === 'SUCCEEDED', 20_000);
  expect(await group(groupId)).toMatchObject({ memberCount: 3, slotsTaken: 3 });
  for (const id of [leaderOrder, ...joined.map((j) => j.id)]) {
    await eventually(async () => (await order(id)).groupBuy.state === 'SUCCEEDED', 20_000);
  }
  const shipped = await ship(leaderOrder);
  expect(shipped.errors).toBeUndefined();
  expect(shipped.data!.shipOrder.status).toBe('SHIPPED');
  const mine = await gql(url(), '{ me { groupBuys { id status } } }', {}, leader.headers);
  expect(mine.errors).toBeUndefined();
});

test('a group that expires without filling: every paid member refunded once, the stock back', async () => {
  const before = await available();
  const leader = newCustomer();
  const member = newCustomer();
  const { orderId: a, groupId } = await openPaid(leader);
  const joined = await place(member, groupId);
  expect(joined.errors).toBeUndefined();
  const b = joined.data!.placeOrder.id as string;
  await pay(member, b);
  await eventually(async () => (await group(groupId)).memberCount === 2, 20_000);
  expect(await available()).toBe(before - 2);

  offset += 61 * 60_000;
  const swept = await stack.referral.sweep(clock());
  expect(swept.groupbuy!.failed).toBeGreaterThanOrEqual(1);
  expect((await group(groupId)).status).toBe('FAILED');
  for (const id of [a, b]) {
    await eventually(async () => (await order(id)).status === 'REFUNDED', 20_000);
    expect((await order(id)).groupBuy.state).toBe('FAILED');
  }
  await eventually(async () => (await available()) === before, 20_000);
  // Again: nothing more is decided or refunded.
  expect((await stack.referral.sweep(clock())).groupbuy).toEqual({ succeeded: 0, failed: 0 });
  await stack.orders.service.sweepAfterSales(new Date(Date.now() + 120_000));
  for (const id of [a, b]) expect((await order(id)).history.filter((h: { to: string }) => h.to === 'REFUNDED')).toHaveLength(1);
  const refunds = await stack.orders.db.collection('order_transitions').countDocuments({ accountId: { $in: [a, b] }, op: 'REFUND' });
  expect(refunds).toBe(2);
  expect(await available()).toBe(before);
});

test('an unpaid join holds its slot only until its payment times out', async () => {
  const { groupId } = await openPaid(newCustomer());
  const late = newCustomer();
  const placed = await place(late, groupId);
  expect(placed.errors).toBeUndefined();
  expect((await group(groupId)).slotsTaken).toBe(2);
  await stack.orders.service.cancelUnpaid(new Date(Date.now() + 24 * 3_600_000));
  await eventually(async () => (await group(groupId)).slotsTaken === 1, 20_000);
  // The freed slot is taken again.
  const again = await place(newCustomer(), groupId);
  expect(again.errors).toBeUndefined();
  expect((await group(groupId)).slotsTaken).toBe(2);
});

test('bad input is refused with clear codes and nothing written', async () => {
  const offersBefore = (await gql(url(), '{ groupBuyOffers { id } }', {}, staff)).data!.groupBuyOffers.length;
  const notBelow = await gql(url(), OFFER, { i: offerInput({ groupPrice: PRICE }) }, staff);
  expect([errorCode(notBelow), errorReason(notBelow)]).toEqual(['BAD_USER_INPUT', 'GROUP_PRICE_NOT_BELOW_PRICE']);
  expect(errorCode(await gql(url(), OFFER, { i: offerInput({ groupSize: 1 }) }, staff))).toBe('BAD_USER_INPUT');
  expect(errorCode(await gql(url(), OFFER, { i: offerInput() }, newCustomer().headers))).toBe('FORBIDDEN');
  expect((await gql(url(), '{ groupBuyOffers { id } }', {}, staff)).data!.groupBuyOffers).toHaveLength(offersBefore);

  const buyer = newCustomer();
  const stockBefore = await available();
  const unknown = await gql(
    url(),
    PLACE,
    {
      i: {
        idempotencyKey: randomUUID(),
        lines: [{ skuId: product.skuId, quantity: 1 }],
        referralOffer: { groupBuy: { offerId: '0'.repeat(24) } },
      },
    },
    buyer.headers,
  );
  expect(errorCode(unknown)).toBe('NOT_FOUND');
  const both = await gql(
    url(),
    PLACE,
    {
      i: {
        idempotencyKey: randomUUID(),
        lines: [{ skuId: product.skuId, quantity: 1 }],
        referralOffer: { groupBuy: { offerId }, bargainId: '0'.repeat(24) },
      },
    },
    buyer.headers,
  );
  expect(errorCode(both)).toBe('BAD_USER_INPUT');
  const two = await gql(
    url(),
    PLACE,
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId: product.skuId, quantity: 2 }], referralOffer: { groupBuy: { offerId } } } },
    buyer.headers,
  );
  expect(errorCode(two)).toBe('BAD_USER_INPUT');
  expect(await available()).toBe(stockBefore);
  const orders = await gql(url(), 'query($m: ID!) { orders(memberId: $m, first: 5) { edges { node { id } } } }', { m: buyer.id }, staff);
  expect(orders.data!.orders.edges).toHaveLength(0);
});
