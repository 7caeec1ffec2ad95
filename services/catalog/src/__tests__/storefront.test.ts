import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, uniqueDbName, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import type { CatalogService } from '../service';
import { READ_MODEL_SUBJECT } from '../storefront/events';
import type { ReadModel } from '../storefront/service';

// The storefront read model (storefront/) against the real FerretDB and NATS: two replicas with
// the read model and one without it, all on one database and one NATS.

type Catalog = RunningService & { service: CatalogService; readModel: ReadModel | null };

let nats: InfraProcess;
let a: Catalog;
let b: Catalog;
let direct: Catalog;

beforeAll(async () => {
  nats = await privateNats();
  const env = (extra: Record<string, string> = {}) => serviceEnv('catalog', nats.url, { MONGO_DB: db, ...extra });
  const db = uniqueDbName('catalog');
  // Long periods: only announcements can keep a replica current during a test.
  const quiet = { CATALOG_READ_MODEL_REFRESH_SECONDS: '3600', STOCK_SWEEP_INTERVAL_SECONDS: '3600' };
  a = (await start(loadServiceConfig(env(quiet)))) as Catalog;
  b = (await start(loadServiceConfig(env(quiet)))) as Catalog;
  direct = (await start(loadServiceConfig(env({ ...quiet, CATALOG_READ_MODEL: 'false' })))) as Catalog;
});
afterAll(async () => {
  await a.db.dropDatabase();
  for (const s of [a, b, direct]) await s.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const asStaff = () => asGateway('catalog', staff());
const asCustomer = () => asGateway('catalog', customer(oid()));
const call = (svc: Catalog, query: string, variables: Record<string, unknown> = {}, headers = asCustomer()) =>
  gql(svc.url, query, variables, headers);
async function must(svc: Catalog, query: string, variables: Record<string, unknown> = {}, headers = asStaff()) {
  const res = await call(svc, query, variables, headers);
  expect(res.errors).toBeUndefined();
  return res.data!;
}

/** Every database command the service's connection sends while `run` runs. */
async function commandsDuring<T>(svc: Catalog, run: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const commands: string[] = [];
  svc.db.set('debug', (collection: string, method: string, query: unknown) => {
    // The outbox relay polls on its own timer; it is not part of any read.
    if (JSON.stringify(query ?? {}).includes('outbox')) return;
    commands.push(`${collection}.${method}`);
  });
  try {
    return { result: await run(), commands };
  } finally {
    svc.db.set('debug', false);
  }
}

const CATEGORY_PAGE =
  'query($c: ID!) { products(first: 20, categoryId: $c) { edges { cursor node { id name price { amount currency } inStock } } } }';
const DETAIL =
  'query($p: ID!) { product(id: $p) { id name description status price { amount currency } skus { id name price { amount } inStock stock { available } } } }';
const CREATE = 'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }';

async function category(svc: Catalog, name = `类目 ${randomUUID().slice(0, 8)}`, parentId?: string): Promise<string> {
  return (await must(svc, 'mutation($i: CreateCategoryInput!) { createCategory(input: $i) { id } }', { i: { name, parentId } }))
    .createCategory.id;
}
async function product(svc: Catalog, input: Record<string, unknown>): Promise<{ id: string; skus: { id: string }[] }> {
  return (
    await must(svc, CREATE, {
      i: { name: `商品 ${randomUUID().slice(0, 8)}`, status: 'ON_SALE', skus: [{ name: '标准', price: 1000, stock: 10 }], ...input },
    })
  ).createProduct;
}
const ready = (svc: Catalog) => eventually(async () => svc.readModel!.ready());

describe('storefront read model', () => {
  test('a category page and a product detail are answered with no database command once warm', async () => {
    const c = await category(a);
    const p = await product(a, {
      categoryId: c,
      skus: [
        { name: '小', price: 1200, stock: 5 },
        { name: '大', price: 2200, stock: 0 },
      ],
    });
    await product(a, { categoryId: c });
    await ready(a);
    await call(a, CATEGORY_PAGE, { c });

    const page = await commandsDuring(a, () => call(a, CATEGORY_PAGE, { c }));
    expect(page.result.errors).toBeUndefined();
    expect(page.result.data!.products.edges).toHaveLength(2);
    expect(page.commands).toEqual([]);

    const detail = await commandsDuring(a, () => call(a, DETAIL, { p: p.id }));
    expect(detail.result.errors).toBeUndefined();
    expect(detail.result.data!.product).toMatchObject({
      id: p.id,
      price: { amount: 1200, currency: 'CNY' },
      skus: [
        { name: '小', price: { amount: 1200 }, inStock: true, stock: { available: 5 } },
        { name: '大', price: { amount: 2200 }, inStock: false, stock: { available: 0 } },
      ],
    });
    expect(detail.commands).toEqual([]);

    // The same holds on a replica that only heard of the product.
    await eventually(async () => (await call(b, DETAIL, { p: p.id })).data?.product?.id === p.id);
    expect((await commandsDuring(b, () => call(b, DETAIL, { p: p.id }))).commands).toEqual([]);
  });

  test('a price/stock/status change made on one replica is visible on another replica’s read model', async () => {
    const c = await category(a);
    const p = await product(a, { categoryId: c, skus: [{ name: '标准', price: 1000, stock: 10 }] });
    const skuId = p.skus[0]!.id;
    await ready(b);
    const seenOnB = async (ok: (product: any) => boolean) =>
      eventually(async () => {
        const res = await call(b, DETAIL, { p: p.id });
        return res.data?.product && ok(res.data.product) ? res.data.product : null;
      });
    await seenOnB((x) => x.price.amount === 1000);

    await must(a, 'mutation($i: UpdateSkuInput!) { updateSku(input: $i) { sku { id } } }', { i: { skuId, price: 1500 } });
    await seenOnB((x) => x.price.amount === 1500 && x.skus[0].price.amount === 1500);

    await must(a, 'mutation($i: AdjustStockInput!) { adjustStock(input: $i) { sku { id } } }', {
      i: { skuId, delta: -10, reason: '盘点' },
    });
    await seenOnB((x) => x.skus[0].stock.available === 0 && x.skus[0].inStock === false);
    // The listing fields follow too (inStock filters the category page).
    await eventually(async () => {
      const res = await call(b, 'query($c: ID!) { products(categoryId: $c, inStock: false) { edges { node { id } } } }', { c });
      return res.data?.products.edges.length === 1;
    });

    await must(a, 'mutation($i: SetProductStatusInput!) { setProductStatus(input: $i) { id } }', {
      i: { productId: p.id, status: 'OFF_SHELF' },
    });
    await seenOnB((x) => x.status === 'OFF_SHELF');
    const list = await call(b, CATEGORY_PAGE, { c });
    expect(list.data!.products.edges).toEqual([]);
    // Answered from B's read model, not from the database.
    expect(b.readModel!.ready()).toBe(true);
    expect((await commandsDuring(b, () => call(b, DETAIL, { p: p.id }))).commands).toEqual([]);
  });

  test('results, order and cursors equal the database path’s for the same data', async () => {
    const root = await category(a);
    const child = await category(a, '子类目', root);
    const made: { id: string; skus: { id: string }[] }[] = [];
    const specs = (v: string) => [{ name: '颜色', value: v }];
    for (let i = 0; i < 7; i++) {
      made.push(
        await product(a, {
          name: `对照商品 ${i}${i % 2 ? ' 特惠' : ''}`,
          categoryId: i % 3 ? root : child,
          keywords: i % 2 ? ['礼盒'] : [],
          skus: [
            { name: 'A', price: 1000 + (i % 3) * 500, stock: i === 4 ? 0 : 5, specs: specs(i % 2 ? '红' : '蓝') },
            { name: 'B', price: 3000, stock: 2, specs: specs('白') },
          ],
        }),
      );
    }
    await product(a, { categoryId: root, status: 'DRAFT' });
    // Sales for SALES_DESC: reserve and pay on one product.
    const orderId = randomUUID();
    const reserved = await a.bus.request(
      'catalog.stock.reserve',
      { orderId, memberId: oid(), lines: [{ skuId: made[2]!.skus[0]!.id, quantity: 3 }] },
      { timeoutMs: 20_000 },
    );
    expect(reserved.orderId).toBe(orderId);
    await a.bus.publish('orders.order.paid', {
      orderId,
      memberId: oid(),
      total: 3000,
      currency: 'CNY',
      lines: [{ skuId: made[2]!.skus[0]!.id, productId: made[2]!.id, quantity: 3, unitPrice: 1000, priceKind: 'LIST' }],
      source: { kind: 'DIRECT' },
      paymentId: `pay-${orderId}`,
      paidAt: new Date().toISOString(),
    });
    await eventually(async () => {
      const doc = await a.db.collection('products').findOne({ _id: new Types.ObjectId(made[2]!.id) });
      return doc?.salesCount === 3;
    });

    const LIST = `query($first: Int, $after: String, $categoryId: ID, $keyword: String, $minPrice: Int, $maxPrice: Int,
      $specs: [SpecValueInput!], $inStock: Boolean, $sort: ProductSort) {
      products(first: $first, after: $after, categoryId: $categoryId, keyword: $keyword, minPrice: $minPrice, maxPrice: $maxPrice,
        specs: $specs, inStock: $inStock, sort: $sort) {
        edges { cursor node { id name status inStock salesCount price { amount } priceRange { min { amount } max { amount } }
          category { id name } skus { id price { amount } stock { available } inStock } } }
        pageInfo { hasNextPage endCursor }
      }
    }`;
    const FACETS =
      'query($c: ID, $k: String) { productFacets(categoryId: $c, keyword: $k) { specs { name values } priceRange { min { amount } max { amount } } truncated } }';
    const queries: [string, Record<string, unknown>][] = [
      ['{ categories { id name children { id name parent { id } } } }', {}],
      [FACETS, { c: root }],
      [FACETS, { c: root, k: '特惠' }],
      [DETAIL, { p: made[3]!.id }],
      [DETAIL, { p: oid() }],
    ];
    for (const sort of ['NEWEST', 'PRICE_ASC', 'PRICE_DESC', 'SALES_DESC']) {
      queries.push([LIST, { categoryId: root, sort, first: 3 }]);
      queries.push([LIST, { categoryId: root, sort, first: 20, minPrice: 1200, maxPrice: 2000 }]);
    }
    queries.push([LIST, { categoryId: child, first: 20 }]);
    queries.push([LIST, { categoryId: root, keyword: '礼盒', first: 20 }]);
    queries.push([
      LIST,
      {
        categoryId: root,
        specs: [
          { name: '颜色', value: '红' },
          { name: '颜色', value: '白' },
        ],
        first: 20,
      },
    ]);
    queries.push([LIST, { categoryId: root, inStock: true, sort: 'PRICE_ASC', first: 20 }]);

    const answer = async (svc: Catalog, query: string, vars: Record<string, unknown>) => {
      const res = await call(svc, query, vars);
      expect(res.errors).toBeUndefined();
      return res.data!;
    };
    // Pages followed by their cursors on each side, and each side's cursor accepted by the other.
    const pages = async (svc: Catalog, vars: Record<string, unknown>) => {
      const out: unknown[] = [];
      let after: string | null = null;
      do {
        const data: any = await answer(svc, LIST, { ...vars, first: 2, after });
        out.push(data);
        after = data.products.pageInfo.hasNextPage ? data.products.pageInfo.endCursor : null;
      } while (after);
      return out;
    };
    await eventually(async () => {
      for (const [q, vars] of queries) {
        if (JSON.stringify(await answer(a, q, vars)) !== JSON.stringify(await answer(direct, q, vars))) return false;
      }
      return true;
    });
    for (const [q, vars] of queries) expect(await answer(a, q, vars)).toEqual(await answer(direct, q, vars));
    for (const sort of ['NEWEST', 'PRICE_ASC', 'PRICE_DESC', 'SALES_DESC']) {
      expect(await pages(a, { categoryId: root, sort })).toEqual(await pages(direct, { categoryId: root, sort }));
    }
    expect(a.readModel!.ready()).toBe(true);
    expect(direct.readModel).toBeNull();
  });

  test('a quote after a price change charges the new price even while a replica’s read model is stale', async () => {
    const p = await product(a, { skus: [{ name: '标准', price: 1000, stock: 10 }] });
    const skuId = p.skus[0]!.id;
    await eventually(async () => (await call(b, DETAIL, { p: p.id })).data?.product?.price.amount === 1000);
    // A price written without any replica announcing it: B's read model keeps the old one.
    await a.db.collection('skus').updateOne({ _id: new Types.ObjectId(skuId) }, { $set: { price: 1800 } });
    expect((await call(b, DETAIL, { p: p.id })).data!.product.price.amount).toBe(1000);
    expect(b.readModel!.ready()).toBe(true);

    const lines = [{ skuId, quantity: 2 }];
    const quoted = await b.service.quote({ lines });
    expect(quoted.lines[0]).toMatchObject({ skuId, unitPrice: 1800, priceKind: 'LIST' });
    expect(quoted.total).toBe(3600);
    const overNats = await a.bus.request('catalog.price.quote', { lines }, { timeoutMs: 20_000 });
    expect(overNats.total).toBe(3600);
  });

  test('a replica that missed an announcement reads everything again before serving from memory', async () => {
    const p = await product(a, { skus: [{ name: '标准', price: 1000, stock: 10 }] });
    await eventually(async () => (await call(b, DETAIL, { p: p.id })).data?.product?.price.amount === 1000);
    await a.db.collection('skus').updateOne({ _id: new Types.ObjectId(p.skus[0]!.id) }, { $set: { price: 1300 } });
    expect((await call(b, DETAIL, { p: p.id })).data!.product.price.amount).toBe(1000);
    // A peer's heartbeat naming a message B never received (lost on the wire).
    const peer = randomUUID();
    const say = (seq: number) => b.bus.nc.publish(READ_MODEL_SUBJECT, new TextEncoder().encode(JSON.stringify({ from: peer, seq })));
    say(0);
    say(1);
    await eventually(async () => (await call(b, DETAIL, { p: p.id })).data?.product?.price.amount === 1300);
    await eventually(async () => b.readModel!.ready());
    expect((await commandsDuring(b, () => call(b, DETAIL, { p: p.id }))).commands).toEqual([]);
  });
});
