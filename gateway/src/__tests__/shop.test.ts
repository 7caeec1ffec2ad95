// The shop's trading loop proved through the gateway: real subgraphs, real FerretDB and NATS.
import { eventually, gql } from '@flywheel/testing';
import { asStaff, newCustomer, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const STOCK = '{ available onHand reserved sold }';

async function createSku(name: string, stock: number, price = 1990): Promise<{ productId: string; skuId: string }> {
  const res = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    { i: { name, status: 'ON_SALE', skus: [{ name: '标准', price, stock }] } },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  return { productId: res.data!.createProduct.id, skuId: res.data!.createProduct.skus[0].id };
}

async function skuStock(productId: string) {
  const res = await gql(url(), `query($id: ID!) { product(id: $id) { skus { id stock ${STOCK} } } }`, { id: productId }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.product.skus[0].stock as { available: number; onHand: number; reserved: number; sold: number };
}

const PLACE = 'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total { amount } } }';

test('200 concurrent checkouts for 50 units: exactly 50 orders, 150 OUT_OF_STOCK, the stock ledger balanced', async () => {
  const { productId, skuId } = await createSku('秒光的燕麦', 50);
  const buyers = Array.from({ length: 200 }, () => newCustomer());
  const results = await Promise.all(
    buyers.map((b, i) => gql(url(), PLACE, { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: `rush-${i}` } }, b.headers)),
  );
  const placed = results.filter((r) => r.data?.placeOrder);
  const codes = results.map((r) => r.errors?.[0]?.extensions?.code).filter(Boolean);
  const tally = codes.reduce<Record<string, number>>((t, c) => ({ ...t, [String(c)]: (t[String(c)] ?? 0) + 1 }), {});
  expect({ placed: placed.length, ...tally }).toEqual({ placed: 50, OUT_OF_STOCK: 150 });
  expect(placed).toHaveLength(50);
  expect(codes.filter((c) => c === 'OUT_OF_STOCK')).toHaveLength(150);
  expect(placed.every((r) => r.data!.placeOrder.status === 'PENDING_PAYMENT')).toBe(true);

  const stock = await skuStock(productId);
  expect(stock).toEqual({ available: 0, onHand: 50, reserved: 50, sold: 0 });
  expect(stock.onHand).toBe(stock.available + stock.reserved + stock.sold);

  // Staff see exactly 50 payable orders for this SKU's buyers.
  const staffOrders = await gql(
    url(),
    '{ orders(status: PENDING_PAYMENT, first: 100) { edges { node { id lines { sku { id } } } } } }',
    {},
    asStaff(),
  );
  expect(staffOrders.errors).toBeUndefined();
  const mine = staffOrders.data!.orders.edges.filter(
    (e: { node: { lines: { sku: { id: string } }[] } }) => e.node.lines[0]!.sku.id === skuId,
  );
  expect(mine).toHaveLength(50);
});

test('pay → catalog sells the reservation; cancel → catalog releases it; each exactly once through the events', async () => {
  const { productId, skuId } = await createSku('礼盒', 5, 12800);
  const alice = newCustomer();
  const bob = newCustomer();
  const a = await gql(url(), PLACE, { i: { lines: [{ skuId, quantity: 2 }], idempotencyKey: 'a-1' } }, alice.headers);
  const b = await gql(url(), PLACE, { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: 'b-1' } }, bob.headers);
  expect(a.data!.placeOrder.total.amount).toBe(25600);

  // Alice pays; the provider calls back twice (as real providers do); Bob cancels.
  const intent = await gql(
    url(),
    'mutation($i: PayOrderInput!) { payOrder(input: $i) { id amount { amount } } }',
    { i: { orderId: a.data!.placeOrder.id } },
    alice.headers,
  );
  expect(intent.errors).toBeUndefined();
  await stack.orders.payments.pay(intent.data!.payOrder.id, { times: 2 });
  const cancel = await gql(
    url(),
    'mutation($i: CancelOrderInput!) { cancelOrder(input: $i) { status } }',
    { i: { orderId: b.data!.placeOrder.id } },
    bob.headers,
  );
  expect(cancel.data?.cancelOrder.status).toBe('CANCELLED');

  const order = await gql(
    url(),
    'query($id: ID!) { order(id: $id) { status payments { status } } }',
    { id: a.data!.placeOrder.id },
    alice.headers,
  );
  expect(order.data!.order).toEqual({ status: 'PAID', payments: [{ status: 'CAPTURED' }] });
  const stock = await eventually(async () => {
    const s = await skuStock(productId);
    return s.sold === 2 && s.reserved === 0 ? s : null;
  });
  expect(stock).toEqual({ available: 3, onHand: 5, reserved: 0, sold: 2 });

  // Another member cannot see or pay Alice's order.
  const peek = await gql(url(), 'query($id: ID!) { order(id: $id) { id } }', { id: a.data!.placeOrder.id }, bob.headers);
  expect(peek.errors?.[0]?.extensions?.code ?? (peek.data?.order === null ? 'NOT_FOUND' : 'visible')).toBe('NOT_FOUND');
  const pay = await gql(
    url(),
    'mutation($i: PayOrderInput!) { payOrder(input: $i) { id } }',
    { i: { orderId: a.data!.placeOrder.id } },
    bob.headers,
  );
  expect(pay.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
});

test('bad input through the gateway is refused with the right code and takes no stock', async () => {
  const { productId, skuId } = await createSku('校验', 3);
  const c = newCustomer();
  const cases: [unknown, string][] = [
    [{ lines: [{ skuId, quantity: 0 }], idempotencyKey: 'z' }, 'BAD_USER_INPUT'],
    [{ lines: [{ skuId, quantity: -1 }], idempotencyKey: 'n' }, 'BAD_USER_INPUT'],
    [{ lines: [{ skuId: '000000000000000000000000', quantity: 1 }], idempotencyKey: 'u' }, 'NOT_FOUND'],
  ];
  for (const [input, code] of cases) {
    const res = await gql(url(), PLACE, { i: input }, c.headers);
    expect({ input, code: res.errors?.[0]?.extensions?.code }).toEqual({ input, code });
  }
  const anon = await gql(url(), PLACE, { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: 'x' } });
  expect(anon.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  expect(await skuStock(productId)).toEqual({ available: 3, onHand: 3, reserved: 0, sold: 0 });
});
