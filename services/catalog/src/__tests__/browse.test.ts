import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import type { EventData } from '@flywheel/events';
import type { ProductProjection } from '../browse/projection';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import type { CatalogService, InventoryService } from '../service';

// The shop's listing against the real FerretDB and NATS: filters, sorts with keyset pages, facets,
// and the listing fields that follow stock, sales and SKU edits (browse/projection.ts).

let nats: InfraProcess;
let svc: RunningService & { service: CatalogService; inventory: InventoryService; projection: ProductProjection };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('catalog', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const asStaff = () => asGateway('catalog', staff());
const asCustomer = () => asGateway('catalog', customer(oid()));
const call = (query: string, variables: Record<string, unknown> = {}, headers = asCustomer()) => gql(svc.url, query, variables, headers);

const PRODUCTS = `query($first: Int, $after: String, $categoryId: ID, $keyword: String, $minPrice: Int, $maxPrice: Int,
  $specs: [SpecValueInput!], $inStock: Boolean, $sort: ProductSort) {
  products(first: $first, after: $after, categoryId: $categoryId, keyword: $keyword, minPrice: $minPrice, maxPrice: $maxPrice,
    specs: $specs, inStock: $inStock, sort: $sort) {
    edges { cursor node { id name inStock salesCount price { amount } priceRange { min { amount } max { amount } } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const FACETS =
  'query($categoryId: ID, $keyword: String) { productFacets(categoryId: $categoryId, keyword: $keyword) { specs { name values } priceRange { min { amount } max { amount } } truncated } }';

let seq = 0;
const spec = (colour: string, size: string) => [
  { name: '颜色', value: colour },
  { name: '尺码', value: size },
];
type SkuSpec = { price: number; stock: number; specs?: { name: string; value: string }[] };

async function category(): Promise<string> {
  const res = await call(
    'mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id } }',
    { input: { name: `类目 ${Date.now().toString(36)}-${++seq}` } },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createCategory.id;
}

async function product(categoryId: string, skus: SkuSpec[], over: Record<string, unknown> = {}) {
  const res = await call(
    'mutation($input: CreateProductInput!) { createProduct(input: $input) { id skus { id } } }',
    {
      input: {
        name: `商品 ${++seq}`,
        categoryId,
        status: 'ON_SALE',
        skus: skus.map((s, i) => ({ name: `规格${i}`, specs: [], ...s })),
        ...over,
      },
    },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  return { id: res.data!.createProduct.id as string, skuIds: res.data!.createProduct.skus.map((s: { id: string }) => s.id) as string[] };
}

const ids = (res: { data?: any }) => res.data!.products.edges.map((e: { node: { id: string } }) => e.node.id);
const list = async (vars: Record<string, unknown>) => {
  const res = await call(PRODUCTS, { first: 100, ...vars });
  expect(res.errors).toBeUndefined();
  return ids(res);
};
const stored = (id: string) => svc.db.collection('products').findOne({ _id: new Types.ObjectId(id) });

const reserve = (orderId: string, lines: { skuId: string; quantity: number; flashSaleId?: string }[]) =>
  svc.bus.request('catalog.stock.reserve', { orderId, memberId: oid(), lines }, { timeoutMs: 20_000 });
const release = (orderId: string) => svc.bus.request('catalog.stock.release', { orderId }, { timeoutMs: 20_000 });
const paid = (orderId: string, skuId: string, quantity: number): EventData<'orders.order.paid'> => ({
  orderId,
  memberId: oid(),
  total: 100 * quantity,
  currency: 'CNY',
  lines: [{ skuId, productId: oid(), quantity, unitPrice: 100, priceKind: 'LIST' }],
  source: { kind: 'DIRECT' },
  paymentId: `pay-${orderId}`,
  paidAt: new Date().toISOString(),
});
const processed = (eventId: string) =>
  eventually(() => svc.db.collection('processed_events').findOne({ _id: `catalog_orders-order-paid:${eventId}` as never }));
async function sell(skuId: string, quantity: number, flashSaleId?: string) {
  const orderId = randomUUID();
  await reserve(orderId, [{ skuId, quantity, ...(flashSaleId ? { flashSaleId } : {}) }]);
  const env = await svc.bus.publish('orders.order.paid', paid(orderId, skuId, quantity));
  await processed(env.id);
  return env;
}
/** The listing as stored, once it satisfies `ok` (projections after stock moves are asynchronous). */
const storedWhen = (id: string, ok: (doc: Record<string, any>) => boolean) =>
  eventually(async () => {
    const doc = await stored(id);
    return doc && ok(doc) ? doc : null;
  });

describe('filters', () => {
  let cat: string;
  let a: string, b: string, d: string, e: string;
  beforeAll(async () => {
    cat = await category();
    // A: from ¥10 (a dearer blue SKU at ¥30 does not count for price filters), in stock.
    a = (
      await product(cat, [
        { price: 1000, stock: 5, specs: spec('红', 'S') },
        { price: 3000, stock: 0, specs: spec('蓝', 'S') },
      ])
    ).id;
    b = (await product(cat, [{ price: 5000, stock: 0, specs: spec('红', 'L') }])).id;
    d = (await product(cat, [{ price: 2000, stock: 3, specs: spec('蓝', 'M') }], { keywords: ['保温杯'] })).id;
    e = (await product(cat, [{ price: 8000, stock: 1, specs: spec('绿', 'L') }], { name: `Special Edition ${seq}` })).id;
    await product(cat, [{ price: 1500, stock: 9, specs: spec('红', 'S') }], { status: 'DRAFT' }); // never for customers
  });

  test('each filter narrows the listing on its own', async () => {
    expect(await list({ categoryId: cat })).toEqual([e, d, b, a]);
    // Price filters use the lowest SKU price, inclusive at both ends.
    expect(await list({ categoryId: cat, minPrice: 2000 })).toEqual([e, d, b]);
    expect(await list({ categoryId: cat, maxPrice: 2000 })).toEqual([d, a]);
    expect(await list({ categoryId: cat, minPrice: 1500, maxPrice: 5000 })).toEqual([d, b]);
    // Spec values of any SKU; values of one name are alternatives, different names must all match.
    expect(await list({ categoryId: cat, specs: [{ name: '颜色', value: '红' }] })).toEqual([b, a]);
    expect(
      await list({
        categoryId: cat,
        specs: [
          { name: '颜色', value: '红' },
          { name: '颜色', value: '蓝' },
        ],
      }),
    ).toEqual([d, b, a]);
    expect(
      await list({
        categoryId: cat,
        specs: [
          { name: '颜色', value: '红' },
          { name: '尺码', value: 'L' },
        ],
      }),
    ).toEqual([b]);
    expect(await list({ categoryId: cat, specs: [{ name: '颜色', value: '紫' }] })).toEqual([]);
    expect(await list({ categoryId: cat, inStock: true })).toEqual([e, d, a]);
    expect(await list({ categoryId: cat, inStock: false })).toEqual([b]);
    expect(await list({ categoryId: cat, keyword: '保温' })).toEqual([d]);
    expect(await list({ keyword: 'special edition' })).toEqual([e]);
  });

  test('filters combine with each other and with keyword and category', async () => {
    const blueInStockUpTo25 = { categoryId: cat, specs: [{ name: '颜色', value: '蓝' }], inStock: true, maxPrice: 2500 };
    expect(await list(blueInStockUpTo25)).toEqual([d, a]);
    expect(await list({ ...blueInStockUpTo25, keyword: '保温' })).toEqual([d]);
    expect(await list({ ...blueInStockUpTo25, minPrice: 1001 })).toEqual([d]);
    expect(await list({ ...blueInStockUpTo25, sort: 'PRICE_ASC' })).toEqual([a, d]);
    expect(await list({ categoryId: cat, inStock: false, specs: [{ name: '尺码', value: 'L' }], sort: 'PRICE_DESC' })).toEqual([b]);
    expect(await list({ categoryId: oid(), inStock: true })).toEqual([]);
  });

  test('a price range upside down, a negative price or an empty spec value is BAD_USER_INPUT', async () => {
    const code = async (vars: Record<string, unknown>) => (await call(PRODUCTS, vars)).errors?.[0]?.extensions?.code;
    expect(await code({ minPrice: 3000, maxPrice: 2000 })).toBe('BAD_USER_INPUT');
    expect(await code({ minPrice: -1 })).toBe('BAD_USER_INPUT');
    expect(await code({ specs: [{ name: '颜色', value: ' ' }] })).toBe('BAD_USER_INPUT');
  });

  test('facets of a category page: every spec value and the price range, following the keyword; drafts and other categories left out', async () => {
    const res = await call(FACETS, { categoryId: cat });
    expect(res.errors).toBeUndefined();
    const facets = res.data!.productFacets;
    expect(facets.truncated).toBe(false);
    expect(facets.priceRange).toEqual({ min: { amount: 1000 }, max: { amount: 8000 } });
    const byName = Object.fromEntries(facets.specs.map((s: { name: string; values: string[] }) => [s.name, [...s.values].sort()]));
    expect(byName).toEqual({ 颜色: ['红', '绿', '蓝'].sort(), 尺码: ['L', 'M', 'S'] });

    const special = (await call(FACETS, { categoryId: cat, keyword: 'special' })).data!.productFacets;
    expect(special).toEqual({
      specs: [
        { name: '尺码', values: ['L'] },
        { name: '颜色', values: ['绿'] },
      ].sort((x, y) => x.name.localeCompare(y.name, 'zh-Hans-CN')),
      priceRange: { min: { amount: 8000 }, max: { amount: 8000 } },
      truncated: false,
    });
    const none = (await call(FACETS, { categoryId: await category() })).data!.productFacets;
    expect(none).toEqual({ specs: [], priceRange: null, truncated: false });
  });
});

describe('sorts page by keyset', () => {
  type Row = { id: string; minPrice: number; salesCount: number };
  let cat: string;
  const rows: Row[] = [];
  beforeAll(async () => {
    cat = await category();
    // Ties on price and on sales straddle page boundaries: the _id tiebreak must hold across them.
    const prices = [1000, 1000, 2000, 500, 1000, 3000, 2000, 1500, 1000];
    const sold = [0, 3, 1, 0, 1, 0, 2, 0, 1];
    for (let i = 0; i < prices.length; i++) {
      const p = await product(cat, [{ price: prices[i]!, stock: 10 }]);
      if (sold[i]) await sell(p.skuIds[0]!, sold[i]!);
      rows.push({ id: p.id, minPrice: prices[i]!, salesCount: sold[i]! });
    }
    for (const r of rows) await storedWhen(r.id, (doc) => doc.salesCount === r.salesCount);
  });

  const byId = (x: Row, y: Row) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
  const expected: Record<string, (x: Row, y: Row) => number> = {
    NEWEST: (x, y) => -byId(x, y),
    PRICE_ASC: (x, y) => x.minPrice - y.minPrice || byId(x, y),
    PRICE_DESC: (x, y) => y.minPrice - x.minPrice || -byId(x, y),
    SALES_DESC: (x, y) => y.salesCount - x.salesCount || -byId(x, y),
  };

  test.each(Object.keys(expected))('%s: pages of 2 cover every product once, in order', async (sort) => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res = await call(PRODUCTS, { first: 2, after, categoryId: cat, sort });
      expect(res.errors).toBeUndefined();
      const page = ids(res);
      expect(page.length).toBeLessThanOrEqual(2);
      seen.push(...page);
      pages++;
      const { hasNextPage, endCursor } = res.data!.products.pageInfo;
      if (!hasNextPage) break;
      after = endCursor;
    }
    expect(pages).toBe(Math.ceil(rows.length / 2));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...rows].sort(expected[sort]).map((r) => r.id));
  });

  test('the listing shows the sort keys it was ordered by', async () => {
    const res = await call(PRODUCTS, { first: 3, categoryId: cat, sort: 'SALES_DESC' });
    expect(res.data!.products.edges.map((e: any) => e.node.salesCount)).toEqual([3, 2, 1]);
    const cheap = await call(PRODUCTS, { first: 1, categoryId: cat, sort: 'PRICE_ASC' });
    expect(cheap.data!.products.edges[0].node.price).toEqual({ amount: 500 });
  });

  test('a cursor is refused by another sort and when forged', async () => {
    const first = await call(PRODUCTS, { first: 2, categoryId: cat, sort: 'PRICE_ASC' });
    const cursor = first.data!.products.pageInfo.endCursor;
    expect((await call(PRODUCTS, { first: 2, after: cursor, categoryId: cat, sort: 'SALES_DESC' })).errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    const forged = Buffer.from(JSON.stringify(['PRICE_ASC', { $gt: 0 }, oid()])).toString('base64url');
    expect((await call(PRODUCTS, { first: 2, after: forged, sort: 'PRICE_ASC' })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await call(PRODUCTS, { first: 2, after: 'not-a-cursor' })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('listing fields follow their sources', () => {
  test('inStock flips to false when the last units are reserved, and back to true when they are released', async () => {
    const cat = await category();
    const { id, skuIds } = await product(cat, [
      { price: 1000, stock: 2 },
      { price: 1200, stock: 1 },
    ]);
    expect(await list({ categoryId: cat, inStock: true })).toEqual([id]);
    const orderA = randomUUID();
    const orderB = randomUUID();
    await reserve(orderA, [{ skuId: skuIds[0]!, quantity: 2 }]);
    await storedWhen(id, (doc) => doc.available === 1 && doc.inStock === true);
    await reserve(orderB, [{ skuId: skuIds[1]!, quantity: 1 }]);
    await storedWhen(id, (doc) => doc.available === 0 && doc.inStock === false);
    expect(await list({ categoryId: cat, inStock: true })).toEqual([]);
    expect(await list({ categoryId: cat, inStock: false })).toEqual([id]);
    expect((await call('query($id: ID!) { product(id: $id) { inStock } }', { id })).data!.product.inStock).toBe(false);

    await release(orderB);
    await storedWhen(id, (doc) => doc.available === 1 && doc.inStock === true);
    expect(await list({ categoryId: cat, inStock: true })).toEqual([id]);
  });

  test('salesCount counts paid units from regular stock and flash quota, recomputed so a redelivered payment adds nothing', async () => {
    const cat = await category();
    const { id, skuIds } = await product(cat, [{ price: 10000, stock: 20 }]);
    const skuId = skuIds[0]!;
    const flash = await call(
      'mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id } } }',
      {
        input: {
          skuId,
          flashPrice: 5000,
          quota: 5,
          perMemberLimit: 2,
          startsAt: new Date(Date.now() - 1000).toISOString(),
          endsAt: new Date(Date.now() + 3600_000).toISOString(),
        },
      },
      asStaff(),
    );
    expect(flash.errors).toBeUndefined();
    const paidTwo = await sell(skuId, 2);
    await sell(skuId, 2, flash.data!.createFlashSale.flashSale.id);
    await storedWhen(id, (doc) => doc.salesCount === 4);

    await processed((await svc.bus.publish('orders.order.paid', paidTwo.data)).id);
    await svc.projection.refresh(id);
    expect((await stored(id))!.salesCount).toBe(4);
    const res = await call('query($id: ID!) { product(id: $id) { salesCount } }', { id });
    expect(res.data!.product.salesCount).toBe(4);
  });

  test('updateSku recomputes the price range, lowest price and spec values the listing filters on', async () => {
    const cat = await category();
    const { id, skuIds } = await product(cat, [
      { price: 3000, stock: 1, specs: [{ name: '容量', value: '250ml' }] },
      { price: 5000, stock: 1, specs: [{ name: '容量', value: '500ml' }] },
    ]);
    expect(await stored(id)).toMatchObject({ minPrice: 3000, maxPrice: 5000, specValues: ['容量=250ml', '容量=500ml'] });
    expect(await list({ categoryId: cat, maxPrice: 1500 })).toEqual([]);

    const UPDATE = 'mutation($input: UpdateSkuInput!) { updateSku(input: $input) { sku { id price { amount } } } }';
    const res = await call(UPDATE, { input: { skuId: skuIds[1], price: 1000, specs: [{ name: '容量', value: '1L' }] } }, asStaff());
    expect(res.errors).toBeUndefined();
    expect(await stored(id)).toMatchObject({ minPrice: 1000, maxPrice: 3000, specValues: ['容量=250ml', '容量=1L'] });
    const view = await call('query($id: ID!) { product(id: $id) { price { amount } priceRange { min { amount } max { amount } } } }', {
      id,
    });
    expect(view.data!.product).toEqual({ price: { amount: 1000 }, priceRange: { min: { amount: 1000 }, max: { amount: 3000 } } });
    expect(await list({ categoryId: cat, maxPrice: 1500 })).toEqual([id]);
    expect(await list({ categoryId: cat, specs: [{ name: '容量', value: '1L' }] })).toEqual([id]);
    expect(await list({ categoryId: cat, specs: [{ name: '容量', value: '500ml' }] })).toEqual([]);
  });

  test('listing fields lost to a racing write are put right by the sweeper repair pass', async () => {
    const cat = await category();
    const { id } = await product(cat, [{ price: 2000, stock: 4, specs: [{ name: '口味', value: '原味' }] }]);
    const UPDATE = 'mutation($input: UpdateProductInput!) { updateProduct(input: $input) { product { name } } }';
    expect((await call(UPDATE, { input: { productId: id, name: '新名字' } }, asStaff())).errors).toBeUndefined();
    // What another replica's whole-document write-back on FerretDB could leave behind.
    await svc.db
      .collection('products')
      .updateOne(
        { _id: new Types.ObjectId(id) },
        { $set: { name: '旧名字', minPrice: 1, inStock: false, available: 0, salesCount: 99, specValues: [] } },
      );
    // Staff listings read the database; customers' read model never saw this write (no replica made it).
    expect(ids(await call(PRODUCTS, { first: 100, categoryId: cat, inStock: true }, asStaff()))).toEqual([]);

    expect(await svc.projection.repairOnce()).toBeGreaterThan(0);
    expect(await stored(id)).toMatchObject({
      name: '新名字',
      status: 'ON_SALE',
      minPrice: 2000,
      maxPrice: 2000,
      inStock: true,
      available: 4,
      salesCount: 0,
      specValues: ['口味=原味'],
    });
    expect(await list({ categoryId: cat, inStock: true, specs: [{ name: '口味', value: '原味' }] })).toEqual([id]);
  });
});
