// Community through the gateway (real subgraphs, FerretDB and NATS): a paid order → a verified
// showcase with its rating → the product page shows catalog's name and community's rating in one
// query → a full refund takes the badge and the rating away; a capacity group fills exactly under
// concurrent joins from the gateway.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import { asStaff, newCustomer, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(180_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const staff = asStaff();
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const PAGE = `query($id: ID!) { product(id: $id) { name price { amount } rating { average count } showcasePosts(first: 5) { body verified showcase { rating } author { id } } } }`;

test('paid order → verified showcase → the product page shows the rating → a full refund removes badge and rating', async () => {
  const created = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    {
      i: {
        name: `晒单好物 ${randomUUID().slice(0, 6)}`,
        status: 'ON_SALE',
        skus: [{ name: '标准', price: 5900, stock: 30, weightGrams: 300 }],
      },
    },
    staff,
  );
  const productId = created.data!.createProduct.id as string;
  const skuId = created.data!.createProduct.skus[0].id as string;
  const buyer = await signUp(url(), { address: true });
  const placed = await gql(
    url(),
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }] } },
    buyer.headers,
  );
  expect(placed.errors).toBeUndefined();
  const orderId = placed.data!.placeOrder.id as string;
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: orderId }, buyer.headers);
  expect((await stack.orders.payments.pay(intent.data!.payOrder.id))[0]?.status).toBe(200);

  // Community learns of the payment from orders.order.paid; until then the line is not a paid one.
  const SHOWCASE = 'mutation($i: PostShowcaseInput!) { postShowcase(input: $i) { id verified showcase { rating } } }';
  const input = { orderId, skuId, rating: 4, body: '质地很好，回购！' };
  const posted = await eventually(async () => {
    const r = await gql(url(), SHOWCASE, { i: input }, buyer.headers);
    return r.errors ? null : r;
  }, 20_000);
  expect(posted.data!.postShowcase).toMatchObject({ verified: true, showcase: { rating: 4 } });
  expect(code(await gql(url(), SHOWCASE, { i: input }, buyer.headers))).toBe('CONFLICT');
  const stranger = await signUp(url());
  expect(code(await gql(url(), SHOWCASE, { i: input }, stranger.headers))).toBe('FORBIDDEN');

  const page = await gql(url(), PAGE, { id: productId });
  expect(page.errors).toBeUndefined();
  expect(page.data!.product).toMatchObject({
    price: { amount: 5900 },
    rating: { average: 4, count: 1 },
    showcasePosts: [{ body: '质地很好，回购！', verified: true, showcase: { rating: 4 }, author: { id: buyer.id } }],
  });

  // A full refund: the showcase loses its badge and leaves the rating.
  const asked = await gql(
    url(),
    'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id } }',
    { i: { orderId, kind: 'REFUND_ONLY', lines: [{ skuId, quantity: 1 }], reason: '不喜欢', idempotencyKey: randomUUID() } },
    buyer.headers,
  );
  const approved = await gql(
    url(),
    'mutation($id: ID!) { approveAfterSale(input: { afterSaleId: $id }) { status } }',
    { id: asked.data!.requestAfterSale.id },
    staff,
  );
  expect(approved.data!.approveAfterSale.status).toBe('REFUNDED');
  const after = await eventually(async () => {
    const r = await gql(url(), PAGE, { id: productId });
    // The post's badge and the product's rating are two writes: wait for both.
    const p = r.data?.product;
    return p?.rating.count === 0 && p.showcasePosts.every((x: { verified: boolean }) => !x.verified) ? r : null;
  }, 20_000);
  expect(after.data!.product.rating).toEqual({ average: null, count: 0 });
  expect(after.data!.product.showcasePosts.every((p: { verified: boolean }) => !p.verified)).toBe(true);
});

test('a group of capacity 5 admits exactly 5 of 12 members joining at once through the gateway', async () => {
  const group = await gql(url(), 'mutation { createGroup(input: { name: "新品体验群", description: "抢先试用" }) { id } }', {}, staff);
  const groupId = group.data!.createGroup.id as string;
  const configured = await gql(
    url(),
    'mutation($id: ID!) { configureGroup(id: $id, input: { type: PRODUCT_INTEREST, capacity: 5, joinPolicy: OPEN }) { capacity joinPolicy { kind } } }',
    { id: groupId },
    staff,
  );
  expect(configured.data!.configureGroup).toEqual({ capacity: 5, joinPolicy: { kind: 'OPEN' } });
  // Tokens as membership issues them (twelve sign-ups from one address would meet the login-code limit).
  const members = Array.from({ length: 12 }, () => newCustomer());
  const results = await Promise.all(
    members.map((m) => gql(url(), 'mutation($g: ID!) { joinGroup(groupId: $g) { id } }', { g: groupId }, m.headers)),
  );
  expect(results.filter((r) => !r.errors)).toHaveLength(5);
  expect(results.filter((r) => r.errors).map(code)).toEqual(Array(7).fill('CONFLICT'));
  const read = await gql(url(), 'query($id: ID!) { group(id: $id) { memberCount } }', { id: groupId });
  expect(read.data!.group.memberCount).toBe(5);
});
