import { connect, StringCodec } from 'nats';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { streamName } from '@flywheel/events';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import { orderIdFor } from '../checkout';
import type { OrderService } from '../main';
// The real catalog answers the price quotes, in-process on the same private NATS.
import { loadServiceConfig as loadCatalogConfig } from '../../../catalog/src/config';
import { start as startCatalog } from '../../../catalog/src/main';
import type { CatalogService } from '../../../catalog/src/service';

let nats: InfraProcess;
let catalog: (RunningService & { service: CatalogService }) | null;
let svc: RunningService & { service: OrderService };

interface Seeded {
  productId: string;
  skus: { id: string; price: number }[];
}
let tea: Seeded;
let draft: Seeded;

async function seed(status: 'ON_SALE' | 'DRAFT', prices: number[]): Promise<Seeded> {
  const product = await catalog!.service.createProduct(staff(), {
    name: `测试商品 ${new Types.ObjectId().toHexString().slice(-6)}`,
    status,
    skus: prices.map((price, i) => ({ name: `规格${i + 1}`, price, stock: 100 })),
  });
  const skus = await catalog!.db.collection('skus').find({ productId: product._id }).sort({ position: 1 }).toArray();
  return { productId: product._id.toHexString(), skus: skus.map((s) => ({ id: s._id.toHexString(), price: s.price as number })) };
}

beforeAll(async () => {
  nats = await privateNats();
  catalog = await startCatalog(loadCatalogConfig(serviceEnv('catalog', nats.url)));
  svc = await start(loadServiceConfig(serviceEnv('orders', nats.url)), { adjusters: [], addresses: null });
  tea = await seed('ON_SALE', [16800, 9900]);
  draft = await seed('DRAFT', [5000]);
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  if (catalog) {
    await catalog.db.dropDatabase();
    await catalog.stop();
  }
  await nats.stop();
});

const newMember = () => new Types.ObjectId().toHexString();
const as = (memberId: string) => asGateway('orders', customer(memberId));
const call = (query: string, variables: Record<string, unknown> = {}, headers = asGateway('orders', null)) =>
  gql(svc.url, query, variables, headers);

const ORDER_FIELDS =
  'id status member { id } total { amount currency } source { kind refId } createdAt lines { product { id } sku { id } name skuName quantity unitPrice { amount currency } subtotal { amount } }';
const PLACE = `mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { ${ORDER_FIELDS} } }`;
const ORDER = `query($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;
const MEMBER_ORDERS =
  'query($r: [_Any!]!, $first: Int, $after: String) { _entities(representations: $r) { ... on Member { id orders(first: $first, after: $after) { edges { cursor node { id total { amount } } } pageInfo { hasNextPage endCursor } } } } }';

let keySeq = 0;
const newKey = () => `checkout-${Date.now()}-${++keySeq}`;
const place = (memberId: string, input: Record<string, unknown>) =>
  call(PLACE, { input: { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[0]!.id, quantity: 1 }], ...input } }, as(memberId));
async function placed(memberId: string, input: Record<string, unknown> = {}) {
  const res = await place(memberId, input);
  expect(res.errors).toBeUndefined();
  return res.data!.placeOrder;
}
const orderCount = (filter: Record<string, unknown> = {}) => svc.db.collection('orders').countDocuments(filter);

describe('placing an order', () => {
  test('the catalog prices every line; duplicate SKUs are added together; the order starts PENDING_PAYMENT', async () => {
    const member = newMember();
    const [can, bag] = tea.skus as [Seeded['skus'][0], Seeded['skus'][0]];
    const order = await placed(member, {
      lines: [
        { skuId: can.id, quantity: 2 },
        { skuId: bag.id, quantity: 1 },
        { skuId: can.id, quantity: 1 },
      ],
      source: { kind: 'LIVE', refId: 'room-42' },
    });
    expect(order).toMatchObject({
      status: 'PENDING_PAYMENT',
      member: { id: member },
      total: { amount: 3 * 16800 + 9900, currency: 'CNY' },
      source: { kind: 'LIVE', refId: 'room-42' },
    });
    const byId = Object.fromEntries(order.lines.map((l: any) => [l.sku.id, l]));
    expect(byId[can.id]).toMatchObject({
      product: { id: tea.productId },
      skuName: '规格1',
      quantity: 3,
      unitPrice: { amount: 16800 },
      subtotal: { amount: 50400 },
    });
    expect(byId[bag.id]).toMatchObject({ quantity: 1, unitPrice: { amount: 9900, currency: 'CNY' }, subtotal: { amount: 9900 } });
    expect(order.lines).toHaveLength(2);

    const read = await call(ORDER, { id: order.id }, as(member));
    expect(read.data?.order).toEqual(order);
  });

  test('the same idempotency key twice returns the first order and stores one document', async () => {
    const member = newMember();
    const input = { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[1]!.id, quantity: 2 }] };
    const first = await placed(member, input);
    const second = await placed(member, input);
    expect(second).toEqual(first);
    expect(first.id).toBe(orderIdFor(member, input.idempotencyKey));
    expect(await orderCount({ memberId: member })).toBe(1);
  });

  test('ten concurrent identical checkouts place one order', async () => {
    const member = newMember();
    const input = { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[0]!.id, quantity: 1 }] };
    const results = await Promise.all(Array.from({ length: 10 }, () => place(member, input)));
    expect(results.map((r) => r.errors)).toEqual(Array(10).fill(undefined));
    expect(new Set(results.map((r) => r.data!.placeOrder.id)).size).toBe(1);
    expect(await orderCount({ memberId: member })).toBe(1);
  });

  test('reusing a key for different lines is a CONFLICT; the same key from another member is another order', async () => {
    const member = newMember();
    const key = newKey();
    const first = await placed(member, { idempotencyKey: key });
    const changed = await place(member, { idempotencyKey: key, lines: [{ skuId: tea.skus[0]!.id, quantity: 5 }] });
    expect(changed.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const other = await placed(newMember(), { idempotencyKey: key });
    expect(other.id).not.toBe(first.id);
    expect(await orderCount({ memberId: member })).toBe(1);
  });

  test.each([
    ['no lines', { lines: [] }],
    ['a zero quantity', { lines: [{ skuId: 'x', quantity: 0 }] }],
    ['a quantity of 100', { lines: [{ skuId: 'x', quantity: 100 }] }],
    [
      'more than 99 of one SKU across lines',
      {
        lines: [
          { skuId: 'x', quantity: 60 },
          { skuId: 'x', quantity: 40 },
        ],
      },
    ],
    ['51 lines', { lines: Array.from({ length: 51 }, (_, i) => ({ skuId: `s${i}`, quantity: 1 })) }],
    ['an empty idempotency key', { idempotencyKey: '  ' }],
    ['a LIVE source without its room', { source: { kind: 'LIVE' } }],
    ['a DIRECT source with a reference', { source: { kind: 'DIRECT', refId: 'x' } }],
  ])('%s is BAD_USER_INPUT and writes nothing', async (_, over) => {
    const before = await orderCount();
    const res = await place(newMember(), over);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await orderCount()).toBe(before);
  });

  test("the catalog's refusals keep their codes: unknown SKU NOT_FOUND, product not on sale BAD_USER_INPUT", async () => {
    const before = await orderCount();
    const unknown = await place(newMember(), { lines: [{ skuId: new Types.ObjectId().toHexString(), quantity: 1 }] });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const notOnSale = await place(newMember(), { lines: [{ skuId: draft.skus[0]!.id, quantity: 1 }] });
    expect(notOnSale.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await orderCount()).toBe(before);
  });

  test('only customers place orders: staff are FORBIDDEN, anonymous callers UNAUTHENTICATED', async () => {
    const input = { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[0]!.id, quantity: 1 }] };
    expect((await call(PLACE, { input }, asGateway('orders', staff()))).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(PLACE, { input })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('orders.order.placed reaches JetStream once, from the outbox, with the attribution', async () => {
    const member = newMember();
    const order = await placed(member, { source: { kind: 'REFERRAL', refId: 'INV123' } });
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      const published = async () => {
        const info = await jsm.streams.info(streamName('orders'));
        const envs = [];
        for (let seq = 1; seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(streamName('orders'), { seq }).catch(() => null);
          const env = m ? JSON.parse(StringCodec().decode(m.data)) : null;
          if (env?.data?.orderId === order.id) envs.push(env);
        }
        return envs;
      };
      const found = await eventually(async () => {
        const envs = await published();
        return envs.length ? envs : null;
      });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({
        type: 'orders.order.placed',
        source: 'orders',
        version: 1,
        data: {
          orderId: order.id,
          memberId: member,
          total: 16800,
          currency: 'CNY',
          lines: [{ skuId: tea.skus[0]!.id, productId: tea.productId, quantity: 1, unitPrice: 16800 }],
          source: { kind: 'REFERRAL', code: 'INV123' },
        },
      });
      // Once the pass that published it has finished, another pass publishes nothing new.
      await svc.relay!.flush();
      expect(await svc.relay!.flush()).toBe(0);
      expect(await published()).toHaveLength(1);
    } finally {
      await nc.close();
    }
  });
});

describe('who sees an order', () => {
  test('another member gets NOT_FOUND for the order, exactly as for an unknown id; staff see it', async () => {
    const owner = newMember();
    const order = await placed(owner);
    const other = await call(ORDER, { id: order.id }, as(newMember()));
    const unknown = await call(ORDER, { id: 'no-such-order' }, as(owner));
    expect(other.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(other.errors?.[0]?.message).toBe(unknown.errors?.[0]?.message);
    expect((await call(ORDER, { id: order.id }, asGateway('orders', staff()))).data?.order.id).toBe(order.id);
  });

  test("a member lists their own orders newest first, page by page; another member's list is FORBIDDEN", async () => {
    const owner = newMember();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await placed(owner)).id);
    const r = [{ __typename: 'Member', id: owner }];

    const page1 = await call(MEMBER_ORDERS, { r, first: 2 }, as(owner));
    expect(page1.errors).toBeUndefined();
    const orders1 = page1.data!._entities[0].orders;
    expect(orders1.pageInfo.hasNextPage).toBe(true);
    const page2 = await call(MEMBER_ORDERS, { r, first: 2, after: orders1.pageInfo.endCursor }, as(owner));
    const orders2 = page2.data!._entities[0].orders;
    expect(orders2.pageInfo.hasNextPage).toBe(false);
    expect([...orders1.edges, ...orders2.edges].map((e: any) => e.node.id)).toEqual([...ids].reverse());

    const stranger = await call(MEMBER_ORDERS, { r, first: 2 }, as(newMember()));
    expect(stranger.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const asStaff = await call(MEMBER_ORDERS, { r, first: 10 }, asGateway('orders', staff()));
    expect(asStaff.data!._entities[0].orders.edges).toHaveLength(3);
    expect((await call(MEMBER_ORDERS, { r, first: 2, after: 'garbage' }, as(owner))).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  test('_entities resolves orders in one batch: unknown ids and other members\u2019 orders are null', async () => {
    const owner = newMember();
    const a = await placed(owner);
    const b = await placed(owner);
    const foreign = await placed(newMember());
    const r = [
      { __typename: 'Order', id: a.id },
      { __typename: 'Order', id: 'unknown' },
      { __typename: 'Order', id: foreign.id },
      { __typename: 'Order', id: b.id },
    ];
    const q = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id total { amount } member { id } } } }';
    const reads: string[] = [];
    // By-id look-ups only: the outbox relay's scans run on the same connection.
    svc.db.set('debug', (collection: string, method: string, query: { _id?: unknown }) => {
      if (collection === 'orders' && (method === 'find' || method === 'findOne') && query?._id) reads.push(JSON.stringify(query._id));
    });
    const res = await call(q, { r }, as(owner));
    svc.db.set('debug', false);
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities.map((e: any) => e?.id ?? null)).toEqual([a.id, null, null, b.id]);
    expect(res.data?._entities[0].member.id).toBe(owner);
    // One batch: each order read once, by id (point reads on FerretDB, one `$in` on MongoDB).
    const asked = [a.id, 'unknown', foreign.id, b.id];
    if (reads.length === 1) expect(JSON.parse(reads[0]!).$in.sort()).toEqual([...asked].sort());
    else expect(reads.map((r) => JSON.parse(r)).sort()).toEqual([...asked].sort());
    const asStaff = await call(q, { r }, asGateway('orders', staff()));
    expect(asStaff.data?._entities.map((e: any) => e?.id ?? null)).toEqual([a.id, null, foreign.id, b.id]);
  });
});

describe('when the catalog is down', () => {
  test('placing an order is UNAVAILABLE and writes nothing; a replay of a placed order still answers', async () => {
    const member = newMember();
    const key = newKey();
    const before = await placed(member, { idempotencyKey: key });
    await catalog!.db.dropDatabase();
    await catalog!.stop();
    catalog = null;
    const count = await orderCount();
    const res = await place(member, {});
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    expect(await orderCount()).toBe(count);
    expect(await placed(member, { idempotencyKey: key })).toEqual(before);
  });
});
