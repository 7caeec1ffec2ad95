import { staff } from '@flywheel/testing';
import { asMember, asStaff, client, newKey, newMember, startHarness, type Harness, type Seeded } from './support';

let h: Harness;
let tea: Seeded;
let cups: Seeded;
beforeAll(async () => {
  h = await startHarness();
  tea = await h.seed('ON_SALE', [{ price: 16800 }, { price: 9900 }]);
  cups = await h.seed('ON_SALE', [{ price: 4500 }]);
});
afterAll(() => h.stop());

const CART_FIELDS =
  'lines { sku { id } product { id } quantity unitPrice { amount currency } subtotal { amount } priceKind addedUnitPrice { amount } status message } total { amount currency } itemCount';
const CART = `{ cart { ${CART_FIELDS} } }`;
const ADD = `mutation($skuId: ID!, $q: Int!) { addCartLine(input: { skuId: $skuId, quantity: $q }) { ${CART_FIELDS} } }`;
const UPDATE = `mutation($skuId: ID!, $q: Int!) { updateCartLine(input: { skuId: $skuId, quantity: $q }) { ${CART_FIELDS} } }`;
const REMOVE = `mutation($skuId: ID!) { removeCartLine(input: { skuId: $skuId }) { ${CART_FIELDS} } }`;

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
async function ok(query: string, variables: Record<string, unknown>, member: string) {
  const res = await call(query, variables, asMember(member));
  expect(res.errors).toBeUndefined();
  return Object.values(res.data!)[0] as any;
}
const cartOf = (member: string) => ok(CART, {}, member);

describe('the cart', () => {
  test('adding the same SKU twice sums one line; the cart is priced by the catalog and totalled', async () => {
    const m = newMember();
    expect(await cartOf(m)).toEqual({ lines: [], total: { amount: 0, currency: 'CNY' }, itemCount: 0 });
    await ok(ADD, { skuId: tea.skus[0]!.id, q: 2 }, m);
    await ok(ADD, { skuId: cups.skus[0]!.id, q: 1 }, m);
    const cart = await ok(ADD, { skuId: tea.skus[0]!.id, q: 1 }, m);
    expect(cart.lines).toEqual([
      {
        sku: { id: tea.skus[0]!.id },
        product: { id: tea.productId },
        quantity: 3,
        unitPrice: { amount: 16800, currency: 'CNY' },
        subtotal: { amount: 50400 },
        priceKind: 'LIST',
        addedUnitPrice: { amount: 16800 },
        status: 'OK',
        message: null,
      },
      expect.objectContaining({ sku: { id: cups.skus[0]!.id }, quantity: 1, status: 'OK', subtotal: { amount: 4500 } }),
    ]);
    expect(cart.total).toEqual({ amount: 50400 + 4500, currency: 'CNY' });
    expect(cart.itemCount).toBe(4);
    expect(await cartOf(m)).toEqual(cart);
  });

  test('fifteen concurrent adds, of one SKU and of different SKUs, lose nothing', async () => {
    const m = newMember();
    const other = await h.seed('ON_SALE', [{ price: 100 }, { price: 200 }, { price: 300 }]);
    const adds = [
      ...Array.from({ length: 12 }, () => call(ADD, { skuId: tea.skus[1]!.id, q: 1 }, asMember(m))),
      ...other.skus.map((s) => call(ADD, { skuId: s.id, q: 2 }, asMember(m))),
    ];
    const results = await Promise.all(adds);
    expect(results.map((r) => r.errors)).toEqual(Array(adds.length).fill(undefined));
    const cart = await cartOf(m);
    const bySku = Object.fromEntries(cart.lines.map((l: any) => [l.sku.id, l.quantity]));
    expect(bySku).toEqual({ [tea.skus[1]!.id]: 12, ...Object.fromEntries(other.skus.map((s) => [s.id, 2])) });
  });

  test('updating sets the quantity, removing takes the line out; updating a line not in the cart is NOT_FOUND', async () => {
    const m = newMember();
    await ok(ADD, { skuId: tea.skus[0]!.id, q: 5 }, m);
    await ok(ADD, { skuId: cups.skus[0]!.id, q: 1 }, m);
    const updated = await ok(UPDATE, { skuId: tea.skus[0]!.id, q: 2 }, m);
    expect(updated.lines[0]).toMatchObject({ quantity: 2, subtotal: { amount: 33600 } });
    const removed = await ok(REMOVE, { skuId: tea.skus[0]!.id }, m);
    expect(removed.lines.map((l: any) => l.sku.id)).toEqual([cups.skus[0]!.id]);
    expect(await ok(REMOVE, { skuId: tea.skus[0]!.id }, m)).toEqual(removed);
    expect((await call(UPDATE, { skuId: tea.skus[0]!.id, q: 1 }, asMember(m))).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await call(UPDATE, { skuId: tea.skus[1]!.id, q: 1 }, asMember(m))).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // Added back after removal: a fresh line.
    expect((await ok(ADD, { skuId: tea.skus[0]!.id, q: 1 }, m)).lines.find((l: any) => l.sku.id === tea.skus[0]!.id).quantity).toBe(1);
  });

  test.each([
    ['a zero quantity', 'BAD_USER_INPUT', { q: 0 }],
    ['a quantity of 100', 'BAD_USER_INPUT', { q: 100 }],
    ['an unknown SKU', 'NOT_FOUND', { skuId: '65f000000000000000000000' }],
  ])('adding %s is %s and leaves the cart unchanged', async (_, code, over) => {
    const m = newMember();
    const res = await call(ADD, { skuId: tea.skus[0]!.id, q: 1, ...over }, asMember(m));
    expect(res.errors?.[0]?.extensions?.code).toBe(code);
    expect((await cartOf(m)).lines).toEqual([]);
  });

  test('a line cannot grow past 99 units', async () => {
    const m = newMember();
    await ok(ADD, { skuId: tea.skus[0]!.id, q: 60 }, m);
    expect((await call(ADD, { skuId: tea.skus[0]!.id, q: 40 }, asMember(m))).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await cartOf(m)).lines[0].quantity).toBe(60);
  });

  test('a product taken off the shelf is flagged OFF_SHELF, never dropped, and leaves the total', async () => {
    const m = newMember();
    const fading = await h.seed('ON_SALE', [{ price: 7000 }]);
    await ok(ADD, { skuId: fading.skus[0]!.id, q: 1 }, m);
    await ok(ADD, { skuId: cups.skus[0]!.id, q: 2 }, m);
    await h.catalog!.service.setProductStatus(staff(), { productId: fading.productId, status: 'OFF_SHELF' });
    const cart = await cartOf(m);
    expect(cart.lines).toEqual([
      expect.objectContaining({
        sku: { id: fading.skus[0]!.id },
        product: { id: fading.productId },
        quantity: 1,
        status: 'OFF_SHELF',
        unitPrice: null,
        subtotal: null,
        addedUnitPrice: { amount: 7000 },
        message: expect.stringContaining('not on sale'),
      }),
      expect.objectContaining({ sku: { id: cups.skus[0]!.id }, status: 'OK', subtotal: { amount: 9000 } }),
    ]);
    expect(cart.total.amount).toBe(9000);
    expect(cart.itemCount).toBe(2);
    // Ordering the whole cart fails with the catalog's refusal; nothing is placed.
    const placed = await call(
      'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
      { i: { idempotencyKey: newKey(), fromCart: true } },
      asMember(m),
    );
    expect(placed.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await h.svc.db.collection('orders').countDocuments({ memberId: m })).toBe(0);
  });

  test('a line asking for more than the catalog has available is flagged OUT_OF_STOCK and leaves the total', async () => {
    const m = newMember();
    const scarce = await h.seed('ON_SALE', [{ price: 3000, stock: 3 }]);
    await ok(ADD, { skuId: cups.skus[0]!.id, q: 1 }, m);
    const cart = await ok(ADD, { skuId: scarce.skus[0]!.id, q: 5 }, m);
    expect(cart.lines[1]).toMatchObject({
      sku: { id: scarce.skus[0]!.id },
      quantity: 5,
      status: 'OUT_OF_STOCK',
      message: 'Only 3 left',
      unitPrice: null,
      subtotal: null,
    });
    expect(cart.total.amount).toBe(4500);
    const fits = await ok(UPDATE, { skuId: scarce.skus[0]!.id, q: 3 }, m);
    expect(fits.lines[1]).toMatchObject({ status: 'OK', subtotal: { amount: 9000 } });
  });

  test('a SKU the catalog no longer knows is flagged UNKNOWN', async () => {
    const m = newMember();
    await ok(ADD, { skuId: cups.skus[0]!.id, q: 1 }, m);
    // Catalog cannot delete SKUs through its API: this line stands for one it deleted since.
    const lines = h.svc.db.collection('cart_lines');
    const known = (await lines.findOne({ memberId: m }))!;
    await lines.insertOne({ ...known, _id: 'gone-line' as any, skuId: 'sku-deleted', createdAt: new Date() });
    const entry = (await h.svc.db.collection('cart_entries').findOne({ memberId: m }))!;
    await h.svc.db
      .collection('cart_entries')
      .insertOne({ ...entry, _id: 'gone-line:1' as any, accountId: 'gone-line', skuId: 'sku-deleted', quantity: 3 });
    const cart = await cartOf(m);
    expect(cart.lines.map((l: any) => [l.sku.id, l.status, l.quantity])).toEqual([
      [cups.skus[0]!.id, 'OK', 1],
      ['sku-deleted', 'UNKNOWN', 3],
    ]);
    expect(cart.total.amount).toBe(4500);
  });

  test('ordering from the cart places its lines at catalog prices and takes them out of the cart', async () => {
    const m = newMember();
    await ok(ADD, { skuId: tea.skus[1]!.id, q: 2 }, m);
    await ok(ADD, { skuId: cups.skus[0]!.id, q: 1 }, m);
    const key = newKey();
    const place = () =>
      call(
        'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } lines { sku { id } quantity } } }',
        { i: { idempotencyKey: key, fromCart: true } },
        asMember(m),
      );
    const res = await place();
    expect(res.errors).toBeUndefined();
    expect(res.data!.placeOrder.total.amount).toBe(2 * 9900 + 4500);
    expect((await cartOf(m)).lines).toEqual([]);
    // The replay answers the same order although the cart is empty now.
    expect((await place()).data?.placeOrder).toEqual(res.data!.placeOrder);
    const empty = await call(
      'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
      { i: { idempotencyKey: newKey(), fromCart: true } },
      asMember(m),
    );
    expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  test('only customers have a cart: staff are FORBIDDEN, anonymous callers UNAUTHENTICATED', async () => {
    expect((await call(CART, {}, asStaff())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(ADD, { skuId: tea.skus[0]!.id, q: 1 }, asStaff())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await client(h).call(CART)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
