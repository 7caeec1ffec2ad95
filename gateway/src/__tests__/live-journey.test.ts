// The live-commerce path end to end through the gateway, on the real subgraphs, FerretDB and NATS
// with two live replicas: a room is scheduled → members subscribe to its reminder → each stage
// (1 h, 30 min, 5 min, start) reaches each member once though both replicas sweep → the room goes
// live → a viewer subscribed over WebSocket gets comments and the pinned product with its catalog
// price → a member buys with source LIVE → the room's GMV counts it → a refund takes it down.
import { randomUUID } from 'node:crypto';
import { eventually, gql, serviceEnv } from '@flywheel/testing';
import * as live from '../../../services/live/src/main';
import { loadServiceConfig } from '../../../services/live/src/config';
import type { TestChannel } from '../../../services/live/src/main';
import { closeFeedClients, feedClient, seen, watch } from './feed-client';
import { asStaff, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(180_000);

let stack: InProcessStack;
let second: live.RunningLive;
beforeAll(async () => {
  stack = await startInProcessStack();
  const first = stack.subgraphs.live as live.RunningLive;
  // A second live replica on the same database and NATS, as production runs two.
  second = await live.start(loadServiceConfig(serviceEnv('live', stack.nats.url, { MONGO_DB: first.db.name })), { sweepers: false });
}, 60_000);
afterAll(async () => {
  await closeFeedClients();
  await second?.stop();
  await stack?.stop();
});

const url = () => stack.gateway.url;
const first = () => stack.subgraphs.live as live.RunningLive;
const staff = asStaff();

test('schedule → remind once per stage on two replicas → live → pin → a WebSocket viewer sees comments and the priced pin → buy LIVE → GMV → refund', async () => {
  const product = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    {
      i: {
        name: `直播新品 ${randomUUID().slice(0, 6)}`,
        status: 'ON_SALE',
        skus: [{ name: '标准', price: 12900, stock: 20, weightGrams: 400 }],
      },
    },
    staff,
  );
  const productId = product.data!.createProduct.id as string;
  const skuId = product.data!.createProduct.skus[0].id as string;
  const startsAt = new Date(Date.now() + 2 * 3600_000);
  const scheduled = await gql(
    url(),
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id status } }',
    { i: { title: '周三 20:00 新品直播', hostName: '小林', scheduledAt: startsAt.toISOString(), productIds: [productId] } },
    staff,
  );
  const roomId = scheduled.data!.scheduleLiveRoom.id as string;

  // Reminders: two members subscribe; both replicas sweep at each stage, twice.
  const [ann, ben] = [await signUp(url(), { address: true }), await signUp(url())];
  for (const m of [ann, ben]) {
    const res = await gql(
      url(),
      'mutation($r: ID!) { subscribeLiveRoomReminder(roomId: $r) { reminderSubscribed } }',
      { r: roomId },
      m.headers,
    );
    expect(res.data!.subscribeLiveRoomReminder.reminderSubscribed).toBe(true);
  }
  for (const minutesBefore of [59, 29, 4]) {
    const at = new Date(startsAt.getTime() - minutesBefore * 60_000);
    await Promise.all([first().sweep(at), second.sweep(at), first().sweep(at), second.sweep(at)]);
  }
  const live1 = await gql(url(), 'mutation($id: ID!) { startLiveRoom(id: $id) { status } }', { id: roomId }, staff);
  expect(live1.data!.startLiveRoom.status).toBe('LIVE');
  const channel = first().channel as TestChannel;
  const delivered = await eventually(async () => {
    const sent = await channel.sent({ roomId });
    return sent.length >= 8 ? sent : null;
  }, 20_000);
  expect(delivered.map((n) => `${n.memberId === ann.id ? 'ann' : 'ben'}:${n.stage}`).sort()).toEqual(
    ['ann:H1', 'ann:M30', 'ann:M5', 'ann:START', 'ben:H1', 'ben:M30', 'ben:M5', 'ben:START'].sort(),
  );

  // A viewer on the feed; a comment and the pin reach them with the product's catalog price.
  const viewer = await signUp(url());
  const feed = watch(feedClient(stack.gateway, viewer.token), roomId);
  await eventually(async () => stack.gateway.hub!.stats().rooms[roomId] === 1);
  await gql(
    url(),
    'mutation($r: ID!, $b: String!) { postLiveComment(roomId: $r, body: $b) { id } }',
    { r: roomId, b: '求链接！' },
    ben.headers,
  );
  await seen(feed, (e) => e.__typename === 'LiveComment' && e.body === '求链接！', 'the comment');
  await gql(url(), 'mutation($r: ID!, $p: ID!) { pinLiveProduct(roomId: $r, productId: $p) { at } }', { r: roomId, p: productId }, staff);
  const pin = await seen(feed, (e) => e.__typename === 'LivePinChange', 'the pinned product');
  expect(pin.pin.product).toMatchObject({ id: productId, price: { amount: 12900, currency: 'CNY' }, inStock: true });

  // Ann buys the pinned product from the room and pays.
  const placed = await gql(
    url(),
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }], source: { kind: 'LIVE', refId: roomId } } },
    ann.headers,
  );
  expect(placed.errors).toBeUndefined();
  const orderId = placed.data!.placeOrder.id as string;
  const total = placed.data!.placeOrder.total.amount as number;
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: orderId }, ann.headers);
  const [callback] = await stack.orders.payments.pay(intent.data!.payOrder.id);
  expect(callback?.status).toBe(200);

  const REPORT = 'query($id: ID!) { liveRoom(id: $id) { sales { orders buyers gmv { amount } refunded { amount } netGmv { amount } } } }';
  const sales = async () => (await gql(url(), REPORT, { id: roomId }, staff)).data!.liveRoom.sales;
  expect(await eventually(async () => ((await sales()).orders === 1 ? sales() : null), 20_000)).toEqual({
    orders: 1,
    buyers: 1,
    gmv: { amount: total },
    refunded: { amount: 0 },
    netGmv: { amount: total },
  });

  // A full refund: the room's net GMV goes back to zero.
  const asked = await gql(
    url(),
    'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id } }',
    { i: { orderId, kind: 'REFUND_ONLY', lines: [{ skuId, quantity: 1 }], reason: '拍错了', idempotencyKey: randomUUID() } },
    ann.headers,
  );
  const approved = await gql(
    url(),
    'mutation($id: ID!) { approveAfterSale(input: { afterSaleId: $id }) { status amount { amount } } }',
    { id: asked.data!.requestAfterSale.id },
    staff,
  );
  expect(approved.data!.approveAfterSale.status).toBe('REFUNDED');
  const refunded = approved.data!.approveAfterSale.amount.amount as number;
  const after = await eventually(async () => {
    const s = await sales();
    return s.refunded.amount > 0 ? s : null;
  }, 20_000);
  expect(after).toEqual({
    orders: 1,
    buyers: 1,
    gmv: { amount: total },
    refunded: { amount: refunded },
    netGmv: { amount: total - refunded },
  });
  expect(refunded).toBe(total);
  // Nothing more was sent to members on the way: one notification per member per stage.
  expect(await channel.sent({ roomId })).toHaveLength(8);
  expect(feed.errors).toEqual([]);
});
