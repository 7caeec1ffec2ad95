import { connect, StringCodec } from 'nats';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { BusRequestError, type RunningService } from '@flywheel/service-kit';
import { streamName } from '@flywheel/events';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import { keywordPattern } from '../browse/service';
import type { CatalogService } from '../service';

let nats: InfraProcess;
let svc: RunningService & { service: CatalogService };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('catalog', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const asStaff = () => asGateway('catalog', staff());
const asCustomer = () => asGateway('catalog', customer(new Types.ObjectId().toHexString()));
const anon = () => asGateway('catalog', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(svc.url, query, variables, headers);

const PRODUCT_FIELDS =
  'id name description status category { id name } price { amount currency } skus { id name specs { name value } price { amount currency } stock { available } } createdAt';
const CREATE_CATEGORY = 'mutation($input: CreateCategoryInput!) { createCategory(input: $input) { id name parent { id } } }';
const CREATE_PRODUCT = `mutation($input: CreateProductInput!) { createProduct(input: $input) { ${PRODUCT_FIELDS} } }`;
const SET_STATUS = 'mutation($input: SetProductStatusInput!) { setProductStatus(input: $input) { id status } }';
const PRODUCT = `query($id: ID!) { product(id: $id) { ${PRODUCT_FIELDS} } }`;
const PRODUCTS =
  'query($first: Int, $after: String, $categoryId: ID, $keyword: String) { products(first: $first, after: $after, categoryId: $categoryId, keyword: $keyword) { edges { cursor node { id name status } } pageInfo { hasNextPage endCursor } } }';

let seq = 0;
const uniqueName = (prefix: string) => `${prefix} ${Date.now().toString(36)}-${++seq}`;
const sku = (over: Record<string, unknown> = {}) => ({
  name: `规格${++seq}`,
  specs: [{ name: '容量', value: '250ml' }],
  price: 3900,
  stock: 10,
  ...over,
});

async function createCategory(name: string, parentId?: string): Promise<string> {
  const res = await call(CREATE_CATEGORY, { input: { name, parentId } }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.createCategory.id;
}
async function createProduct(input: Record<string, unknown>) {
  const res = await call(CREATE_PRODUCT, { input: { name: uniqueName('商品'), skus: [sku()], ...input } }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.createProduct;
}
const ids = (res: { data?: any }) => res.data!.products.edges.map((e: { node: { id: string } }) => e.node.id);
const counts = async () => ({
  products: await svc.db.collection('products').countDocuments(),
  skus: await svc.db.collection('skus').countDocuments(),
  categories: await svc.db.collection('categories').countDocuments(),
});

describe('staff build the catalogue', () => {
  test('staff create a category tree and a product with SKUs; the product price is its cheapest SKU', async () => {
    const root = await createCategory(uniqueName('茶具'));
    const child = await createCategory('茶杯', root);
    const product = await createProduct({
      name: '青瓷茶杯',
      description: '手工青瓷',
      categoryId: child,
      keywords: ['茶杯', 'celadon'],
      status: 'ON_SALE',
      skus: [sku({ name: '大号', price: 12900, stock: 5 }), sku({ name: '小号', price: 8900, stock: 0, specs: [] })],
    });
    expect(product).toMatchObject({
      name: '青瓷茶杯',
      description: '手工青瓷',
      status: 'ON_SALE',
      category: { id: child, name: '茶杯' },
      price: { amount: 8900, currency: 'CNY' },
    });
    expect(product.skus.map((s: any) => [s.name, s.price.amount, s.stock.available])).toEqual([
      ['大号', 12900, 5],
      ['小号', 8900, 0],
    ]);

    const tree = await call('{ categories { id name parent { id } children { id name parent { id } children { id } } } }');
    expect(tree.errors).toBeUndefined();
    const node = tree.data!.categories.find((c: { id: string }) => c.id === root);
    expect(node).toMatchObject({ parent: null, children: [{ id: child, name: '茶杯', parent: { id: root }, children: [] }] });
    expect(tree.data!.categories.map((c: { id: string }) => c.id)).not.toContain(child);

    const stored = await svc.db
      .collection('skus')
      .find({ productId: new Types.ObjectId(product.id) })
      .toArray();
    expect(stored.map((s) => s.price)).toEqual([12900, 8900]);
  });

  test('the same category name twice under one parent is a CONFLICT', async () => {
    const name = uniqueName('Duplicate');
    await createCategory(name);
    const res = await call(CREATE_CATEGORY, { input: { name: name.toUpperCase() } }, asStaff());
    expect(res.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  test('customers and anonymous callers cannot mutate: FORBIDDEN and UNAUTHENTICATED', async () => {
    const input = { name: uniqueName('x'), skus: [sku()] };
    const before = await counts();
    expect((await call(CREATE_PRODUCT, { input }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(CREATE_CATEGORY, { input: { name: 'x' } }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(CREATE_PRODUCT, { input })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const { id } = await createProduct({});
    expect((await call(SET_STATUS, { input: { productId: id, status: 'ON_SALE' } }, asCustomer())).errors?.[0]?.extensions?.code).toBe(
      'FORBIDDEN',
    );
    expect((await counts()).categories).toBe(before.categories);
  });

  test.each([
    ['no SKU', { skus: [] }],
    ['a zero price', { skus: [sku({ price: 0 })] }],
    ['a negative price', { skus: [sku({ price: -100 })] }],
    ['negative stock', { skus: [sku(), sku({ stock: -1 })] }],
    ['an unknown category', { categoryId: new Types.ObjectId().toHexString() }],
    ['a malformed category id', { categoryId: 'not-an-id' }],
    ['an empty name', { name: '   ' }],
    ['two SKUs with one name', { skus: [sku({ name: 'A' }), sku({ name: 'a' })] }],
  ])('%s is BAD_USER_INPUT and writes nothing', async (_, over) => {
    const before = await counts();
    const res = await call(CREATE_PRODUCT, { input: { name: uniqueName('bad'), skus: [sku()], ...over } }, asStaff());
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await counts()).toEqual(before);
  });

  test('a fractional price is refused before anything is written', async () => {
    const before = await counts();
    const res = await call(CREATE_PRODUCT, { input: { name: uniqueName('bad'), skus: [sku({ price: 39.9 })] } }, asStaff());
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await counts()).toEqual(before);
  });

  test('a category under an unknown parent is BAD_USER_INPUT and writes nothing', async () => {
    const before = await counts();
    const res = await call(CREATE_CATEGORY, { input: { name: 'orphan', parentId: new Types.ObjectId().toHexString() } }, asStaff());
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await counts()).toEqual(before);
  });
});

describe('what customers see', () => {
  test('drafts are invisible to customers and anonymous visitors, visible to staff, and appear once on sale', async () => {
    const draft = await createProduct({});
    expect(draft.status).toBe('DRAFT');
    expect((await call(PRODUCT, { id: draft.id }, asCustomer())).data?.product).toBeNull();
    expect((await call(PRODUCT, { id: draft.id })).data?.product).toBeNull();
    expect((await call(PRODUCT, { id: draft.id }, asStaff())).data?.product.id).toBe(draft.id);
    expect(ids(await call(PRODUCTS, { first: 100 }, asCustomer()))).not.toContain(draft.id);
    expect(ids(await call(PRODUCTS, { first: 100 }, asStaff()))).toContain(draft.id);

    const onSale = await call(SET_STATUS, { input: { productId: draft.id, status: 'ON_SALE' } }, asStaff());
    expect(onSale.data?.setProductStatus).toEqual({ id: draft.id, status: 'ON_SALE' });
    expect((await call(PRODUCT, { id: draft.id }, asCustomer())).data?.product.status).toBe('ON_SALE');
    expect(ids(await call(PRODUCTS, { first: 100 }, asCustomer()))).toContain(draft.id);

    // Off the shelf: gone from the shop, still resolvable for order history; never a draft again.
    await call(SET_STATUS, { input: { productId: draft.id, status: 'OFF_SHELF' } }, asStaff());
    expect(ids(await call(PRODUCTS, { first: 100 }, asCustomer()))).not.toContain(draft.id);
    expect((await call(PRODUCT, { id: draft.id }, asCustomer())).data?.product.status).toBe('OFF_SHELF');
    const back = await call(SET_STATUS, { input: { productId: draft.id, status: 'DRAFT' } }, asStaff());
    expect(back.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  test('an unknown or malformed product id is null; an unknown product for setProductStatus is NOT_FOUND', async () => {
    expect((await call(PRODUCT, { id: new Types.ObjectId().toHexString() })).data?.product).toBeNull();
    expect((await call(PRODUCT, { id: 'nope' })).data?.product).toBeNull();
    const res = await call(SET_STATUS, { input: { productId: new Types.ObjectId().toHexString(), status: 'ON_SALE' } }, asStaff());
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  test('concurrent status changes are ordered by the status ledger and the product ends on the last one', async () => {
    const { id } = await createProduct({ status: 'ON_SALE' });
    const targets = ['OFF_SHELF', 'ON_SALE', 'OFF_SHELF', 'ON_SALE', 'OFF_SHELF'];
    const results = await Promise.all(targets.map((status) => call(SET_STATUS, { input: { productId: id, status } }, asStaff())));
    expect(results.every((r) => !r.errors)).toBe(true);
    const entries = await svc.db.collection('product_status_entries').find({ accountId: id }).sort({ seq: 1 }).toArray();
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.from).toBe(entries[i - 1]!.to);
    // A later call re-projects the ledger head onto the product.
    const head = entries.at(-1)!.to;
    await call(SET_STATUS, { input: { productId: id, status: head } }, asStaff());
    expect((await call(PRODUCT, { id }, asStaff())).data?.product.status).toBe(head);
  });

  test('products page newest first with cursors, and a category includes its subcategories', async () => {
    const category = await createCategory(uniqueName('分页'));
    const sub = await createCategory('子类', category);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createProduct({ categoryId: i % 2 ? sub : category, status: 'ON_SALE' })).id);
    await createProduct({ categoryId: category }); // a draft: not for customers

    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res = await call(PRODUCTS, { first: 2, after, categoryId: category }, asCustomer());
      expect(res.errors).toBeUndefined();
      seen.push(...ids(res));
      pages++;
      const { hasNextPage, endCursor } = res.data!.products.pageInfo;
      if (!hasNextPage) break;
      after = endCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...created].reverse());
    expect(ids(await call(PRODUCTS, { first: 10, categoryId: sub }, asCustomer()))).toEqual([created[3], created[1]]);
    expect(ids(await call(PRODUCTS, { first: 10, categoryId: new Types.ObjectId().toHexString() }))).toEqual([]);
    expect((await call(PRODUCTS, { first: 101 })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  test('keyword search matches name or keywords, case-insensitively, and treats regex characters literally', async () => {
    const tag = Date.now().toString(36);
    const mug = (await createProduct({ name: `Travel MUG ${tag}`, status: 'ON_SALE' })).id;
    const special = (await createProduct({ name: `C++ (1.5L)* ${tag}`, status: 'ON_SALE' })).id;
    const byKeyword = (await createProduct({ name: `保温壶 ${tag}`, keywords: [`Thermos-${tag}`], status: 'ON_SALE' })).id;
    const search = async (keyword: string) => ids(await call(PRODUCTS, { first: 50, keyword }, asCustomer()));

    expect(await search(`mug ${tag}`)).toEqual([mug]);
    expect(await search(`c++ (1.5l)*`)).toEqual([special]);
    expect(await search(`thermos-${tag}`)).toEqual([byKeyword]);
    expect(await search('.*')).toEqual([]);
    expect(await search(`(1.5L`)).toEqual([special]);
    expect(keywordPattern('a.b').test('axb')).toBe(false);
  });
});

describe('price quotes over NATS (catalog.price.quote)', () => {
  let product: any;
  beforeAll(async () => {
    product = await createProduct({
      name: '龙井 250g',
      status: 'ON_SALE',
      skus: [sku({ name: '罐装', price: 16800 }), sku({ name: '袋装', price: 9900 })],
    });
  });

  test('prices each line from the stored SKU and totals in fen', async () => {
    const [can, bag] = product.skus;
    const quote = await svc.bus.request('catalog.price.quote', {
      lines: [
        { skuId: can.id, quantity: 2 },
        { skuId: bag.id, quantity: 3 },
      ],
    });
    expect(quote).toEqual({
      lines: [
        {
          skuId: can.id,
          productId: product.id,
          quantity: 2,
          unitPrice: 16800,
          priceKind: 'LIST',
          name: '龙井 250g',
          skuName: '罐装',
          available: 10,
        },
        {
          skuId: bag.id,
          productId: product.id,
          quantity: 3,
          unitPrice: 9900,
          priceKind: 'LIST',
          name: '龙井 250g',
          skuName: '袋装',
          available: 10,
        },
      ],
      total: 2 * 16800 + 3 * 9900,
      currency: 'CNY',
    });
  });

  test('any NATS client gets the same answer on the wire', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const sc = StringCodec();
      const msg = await nc.request(
        'catalog.price.quote',
        sc.encode(JSON.stringify({ lines: [{ skuId: product.skus[1].id, quantity: 1 }] })),
      );
      expect(JSON.parse(sc.decode(msg.data))).toMatchObject({ ok: true, data: { total: 9900, currency: 'CNY' } });
      const bad = await nc.request('catalog.price.quote', sc.encode(JSON.stringify({ lines: [] })));
      expect(JSON.parse(sc.decode(bad.data))).toMatchObject({ ok: false, error: { code: 'BAD_USER_INPUT' } });
    } finally {
      await nc.close();
    }
  });

  const refusal = (lines: { skuId: string; quantity: number }[]) =>
    svc.bus.request('catalog.price.quote', { lines }).then(
      () => null,
      (err: unknown) => (err instanceof BusRequestError ? err.code : String(err)),
    );

  test('an unknown SKU is NOT_FOUND', async () => {
    expect(await refusal([{ skuId: new Types.ObjectId().toHexString(), quantity: 1 }])).toBe('NOT_FOUND');
    expect(await refusal([{ skuId: 'garbage', quantity: 1 }])).toBe('NOT_FOUND');
  });

  test('a SKU of a product not on sale is BAD_USER_INPUT', async () => {
    const draft = await createProduct({});
    expect(await refusal([{ skuId: draft.skus[0].id, quantity: 1 }])).toBe('BAD_USER_INPUT');
  });

  test('an excessive quantity or a repeated SKU is BAD_USER_INPUT', async () => {
    expect(await refusal([{ skuId: product.skus[0].id, quantity: 1000 }])).toBe('BAD_USER_INPUT');
    expect(
      await refusal([
        { skuId: product.skus[0].id, quantity: 1 },
        { skuId: product.skus[0].id, quantity: 1 },
      ]),
    ).toBe('BAD_USER_INPUT');
  });
});

describe('federation', () => {
  const ENTITIES =
    'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id name price { amount } } ... on Sku { id name product { id } } } }';

  test('_entities resolves products and SKUs in one batch each, unknown ids and drafts (for customers) as null', async () => {
    const a = await createProduct({ status: 'ON_SALE', skus: [sku({ price: 500 })] });
    const b = await createProduct({ status: 'ON_SALE' });
    const draft = await createProduct({});
    const r = [
      { __typename: 'Product', id: a.id },
      { __typename: 'Product', id: new Types.ObjectId().toHexString() },
      { __typename: 'Sku', id: b.skus[0].id },
      { __typename: 'Product', id: b.id },
      { __typename: 'Sku', id: 'nope' },
      { __typename: 'Product', id: draft.id },
      { __typename: 'Sku', id: draft.skus[0].id },
    ];
    const recordReads = async (headers: Record<string, string>) => {
      const reads: Record<string, string[]> = { products: [], skus: [] };
      // By-id look-ups only: the outbox relay's scans run on the same connection.
      svc.db.set('debug', (collection: string, method: string, query: { _id?: { $in?: unknown[] } }) => {
        if (!(collection in reads) || (method !== 'find' && method !== 'findOne') || !query?._id) return;
        const ids = query._id.$in ?? [query._id];
        reads[collection]!.push(...ids.map(String));
      });
      const res = await call(ENTITIES, { r }, headers);
      svc.db.set('debug', false);
      expect(res.errors).toBeUndefined();
      return { res, reads };
    };
    const { res, reads: customerReads } = await recordReads(asCustomer());
    expect(res.data?._entities.map((e: any) => e?.id ?? null)).toEqual([a.id, null, b.skus[0].id, b.id, null, null, null]);
    expect(res.data?._entities[0].price.amount).toBe(500);
    expect(res.data?._entities[2].product.id).toBe(b.id);
    // Customers are answered from the storefront read model: no document is read.
    expect(customerReads).toEqual({ products: [], skus: [] });

    // Staff read the database: one batch per collection, each document read once (point reads on
    // FerretDB, one `$in` on MongoDB); the SKUs' products come from the same batch's cache. 'nope'
    // is never asked.
    const { res: asStaffRes, reads } = await recordReads(asStaff());
    expect(asStaffRes.data?._entities.map((e: any) => e?.id ?? null)).toEqual([
      a.id,
      null,
      b.skus[0].id,
      b.id,
      null,
      draft.id,
      draft.skus[0].id,
    ]);
    expect(reads.products!.sort()).toEqual([a.id, r[1]!.id, b.id, draft.id].sort());
    expect(reads.skus!.sort()).toEqual([b.skus[0].id, draft.skus[0].id].sort());
  });
});

describe('events', () => {
  test('product creation and status changes reach JetStream as catalog.product.changed, from the outbox', async () => {
    const { id } = await createProduct({});
    await call(SET_STATUS, { input: { productId: id, status: 'ON_SALE' } }, asStaff());
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      const statuses = await eventually(async () => {
        const info = await jsm.streams.info(streamName('catalog'));
        const found: string[] = [];
        for (let s = 1; s <= info.state.last_seq; s++) {
          const m = await jsm.streams.getMessage(streamName('catalog'), { seq: s }).catch(() => null);
          const env = m ? JSON.parse(StringCodec().decode(m.data)) : null;
          if (env?.type === 'catalog.product.changed' && env.data.productId === id) found.push(env.data.status);
        }
        return found.length === 2 ? found : null;
      });
      expect(statuses).toEqual(['DRAFT', 'ON_SALE']);
    } finally {
      await nc.close();
    }
  });
});
