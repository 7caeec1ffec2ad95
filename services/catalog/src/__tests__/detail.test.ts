import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';

// The product detail page and the staff edits behind it, against the real FerretDB and NATS.

let nats: InfraProcess;
let svc: RunningService;

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
const asStaff = (id?: string) => asGateway('catalog', staff(id));
const asCustomer = () => asGateway('catalog', customer(oid()));
const call = (query: string, variables: Record<string, unknown> = {}, headers = asStaff()) => gql(svc.url, query, variables, headers);

const DETAIL = `id name description status category { id }
  images { url alt } videoUrl parameters { name value } afterSalesPolicy salesCount
  price { amount } priceRange { min { amount } max { amount } }
  skus { id name specs { name value } price { amount currency } marketPrice { amount currency } memberPrice { amount } }`;
const CREATE = `mutation($input: CreateProductInput!) { createProduct(input: $input) { ${DETAIL} } }`;
const PRODUCT = `query($id: ID!) { product(id: $id) { ${DETAIL} } }`;
const UPDATE_PRODUCT = `mutation($input: UpdateProductInput!) { updateProduct(input: $input) { product { ${DETAIL} } } }`;
const UPDATE_SKU =
  'mutation($input: UpdateSkuInput!) { updateSku(input: $input) { sku { id price { amount } marketPrice { amount } memberPrice { amount } specs { name value } stock { lowStockThreshold } product { id priceRange { min { amount } max { amount } } } } } }';

let seq = 0;
const images = [
  { url: 'https://cdn.example.com/tea/cover.jpg', alt: '封面' },
  { url: 'https://cdn.example.com/tea/leaf.jpg', alt: '茶叶特写' },
  { url: 'https://cdn.example.com/tea/box.jpg' },
];
const parameters = [
  { name: '产地', value: '浙江杭州' },
  { name: '规格', value: '250g×2' },
  { name: '保质期', value: '18个月' },
];
async function createProduct(over: Record<string, unknown> = {}) {
  const res = await call(CREATE, {
    input: {
      name: `西湖龙井 ${++seq}`,
      status: 'ON_SALE',
      skus: [
        { name: '罐装', price: 16800, marketPrice: 19800, memberPrice: 15800, stock: 10, specs: [{ name: '包装', value: '罐' }] },
        { name: '袋装', price: 9900, stock: 10 },
      ],
      ...over,
    },
  });
  expect(res.errors).toBeUndefined();
  return res.data!.createProduct;
}
const counts = async () => ({
  products: await svc.db.collection('products').countDocuments(),
  skus: await svc.db.collection('skus').countDocuments(),
  revisions: await svc.db.collection('product_revisions').countDocuments(),
});
const skuDoc = (id: string) => svc.db.collection('skus').findOne({ _id: new Types.ObjectId(id) });

describe('product detail', () => {
  test('images in order, video, parameters, after-sales policy and SKU reference and member prices round-trip', async () => {
    const created = await createProduct({
      description: '明前特级',
      images,
      videoUrl: 'https://cdn.example.com/tea/brew.mp4',
      parameters,
      afterSalesPolicy: '未拆封7天无理由退换；质量问题包邮退换。',
    });
    const res = await call(PRODUCT, { id: created.id }, asCustomer());
    expect(res.errors).toBeUndefined();
    expect(res.data!.product).toEqual(created);
    expect(res.data!.product).toMatchObject({
      images: [images[0], images[1], { url: images[2]!.url, alt: '' }],
      videoUrl: 'https://cdn.example.com/tea/brew.mp4',
      parameters,
      afterSalesPolicy: '未拆封7天无理由退换；质量问题包邮退换。',
      salesCount: 0,
      price: { amount: 9900 },
      priceRange: { min: { amount: 9900 }, max: { amount: 16800 } },
      skus: [
        {
          name: '罐装',
          price: { amount: 16800, currency: 'CNY' },
          marketPrice: { amount: 19800, currency: 'CNY' },
          memberPrice: { amount: 15800 },
        },
        { name: '袋装', marketPrice: null, memberPrice: null },
      ],
    });
  });

  test('a product created without detail fields has empty ones', async () => {
    const created = await createProduct();
    expect(created).toMatchObject({ images: [], videoUrl: null, parameters: [], afterSalesPolicy: '', salesCount: 0 });
  });

  test.each([
    ['a market price below the price', { skus: [{ name: 'a', price: 1000, marketPrice: 999, stock: 1 }] }, 'skus[0].marketPrice'],
    ['a member price above the price', { skus: [{ name: 'a', price: 1000, memberPrice: 1001, stock: 1 }] }, 'skus[0].memberPrice'],
    ['a zero member price', { skus: [{ name: 'a', price: 1000, memberPrice: 0, stock: 1 }] }, 'skus[0].memberPrice'],
    ['an image that is not an http(s) URL', { images: [{ url: 'javascript:alert(1)' }] }, 'images[0].url'],
    ['a relative image URL', { images: [{ url: '/img/a.jpg' }] }, 'images[0].url'],
    ['21 images', { images: Array.from({ length: 21 }, (_, i) => ({ url: `https://cdn.example.com/${i}.jpg` })) }, 'images'],
    ['a parameter without a value', { parameters: [{ name: '产地', value: ' ' }] }, 'parameters[0].value'],
    ['a video URL on ftp', { videoUrl: 'ftp://cdn.example.com/a.mp4' }, 'videoUrl'],
    [
      'a spec name with "="',
      { skus: [{ name: 'a', price: 1000, stock: 1, specs: [{ name: 'a=b', value: 'c' }] }] },
      'skus[0].specs[0].name',
    ],
  ])('creating a product with %s is BAD_USER_INPUT naming the field, and writes nothing', async (_, over, field) => {
    const before = await counts();
    const res = await call(CREATE, { input: { name: `bad ${++seq}`, skus: [{ name: 'a', price: 1000, stock: 1 }], ...over } });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await counts()).toEqual(before);
  });
});

describe('staff edit a product', () => {
  test('updateProduct changes only the fields given; null clears the video and the category; lists are replaced whole', async () => {
    const cat = await call('mutation { createCategory(input: { name: "绿茶" }) { id } }');
    const created = await createProduct({
      categoryId: cat.data!.createCategory.id,
      images,
      parameters,
      videoUrl: 'https://cdn.example.com/v.mp4',
      description: '原描述',
      keywords: ['龙井'],
    });
    const res = await call(UPDATE_PRODUCT, {
      input: {
        productId: created.id,
        name: '狮峰龙井',
        images: [images[2], images[0]],
        videoUrl: null,
        categoryId: null,
        afterSalesPolicy: '7天无理由',
      },
    });
    expect(res.errors).toBeUndefined();
    const updated = res.data!.updateProduct.product;
    expect(updated).toEqual({
      ...created,
      name: '狮峰龙井',
      images: [{ url: images[2]!.url, alt: '' }, images[0]],
      videoUrl: null,
      category: null,
      afterSalesPolicy: '7天无理由',
    });
    expect((await call(PRODUCT, { id: created.id }, asCustomer())).data!.product).toEqual(updated);
    const search = await call('query($k: String) { products(keyword: $k) { edges { node { id } } } }', { k: '狮峰' }, asCustomer());
    expect(search.data!.products.edges).toEqual([{ node: { id: created.id } }]);
    expect(await svc.db.collection('product_revisions').countDocuments({ accountId: created.id })).toBe(1);
  });

  test('two staff editing different fields of one product at once: both edits land', async () => {
    const { id } = await createProduct();
    const [a, b] = await Promise.all([
      call(UPDATE_PRODUCT, { input: { productId: id, description: '新描述' } }, asStaff('staff-a')),
      call(UPDATE_PRODUCT, { input: { productId: id, parameters: [{ name: '产地', value: '杭州' }] } }, asStaff('staff-b')),
    ]);
    expect(a.errors).toBeUndefined();
    expect(b.errors).toBeUndefined();
    const now = (await call(PRODUCT, { id })).data!.product;
    expect(now).toMatchObject({ description: '新描述', parameters: [{ name: '产地', value: '杭州' }] });
    const revisions = await svc.db.collection('product_revisions').find({ accountId: id }).sort({ seq: 1 }).toArray();
    expect(revisions.map((r) => r.seq)).toEqual([1, 2]);
    expect(revisions.map((r) => r.by).sort()).toEqual(['staff-a', 'staff-b']);
  });

  test('updateSku reprices for future quotes and edits reference and member prices, specs and the low-stock threshold', async () => {
    const created = await createProduct();
    const [can, bag] = created.skus;
    const res = await call(UPDATE_SKU, {
      input: {
        skuId: bag.id,
        price: 8900,
        marketPrice: 12900,
        memberPrice: 8500,
        specs: [{ name: '包装', value: '袋' }],
        lowStockThreshold: 2,
      },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.updateSku.sku).toEqual({
      id: bag.id,
      price: { amount: 8900 },
      marketPrice: { amount: 12900 },
      memberPrice: { amount: 8500 },
      specs: [{ name: '包装', value: '袋' }],
      stock: { lowStockThreshold: 2 },
      product: { id: created.id, priceRange: { min: { amount: 8900 }, max: { amount: 16800 } } },
    });
    const quote = await svc.bus.request('catalog.price.quote', { lines: [{ skuId: bag.id, quantity: 1 }] });
    expect(quote.lines[0]).toMatchObject({ unitPrice: 8900, priceKind: 'LIST' });
    // A signed-in member pays the member price.
    const forMember = await svc.bus.request('catalog.price.quote', { lines: [{ skuId: bag.id, quantity: 2 }], memberId: 'member-1' });
    expect(forMember).toMatchObject({ lines: [{ unitPrice: 8500, priceKind: 'MEMBER' }], total: 17_000 });

    // Omitted fields stay; null clears the reference and member prices.
    const cleared = await call(UPDATE_SKU, { input: { skuId: can.id, marketPrice: null, memberPrice: null } });
    expect(cleared.data!.updateSku.sku).toMatchObject({ price: { amount: 16800 }, marketPrice: null, memberPrice: null });
  });

  test.each([
    ['a market price below the price', { marketPrice: 16799 }, 'marketPrice'],
    ['a price above the market price', { price: 19801 }, 'marketPrice'],
    ['a price below the member price', { price: 15000 }, 'memberPrice'],
    ['a member price above the price', { memberPrice: 16801 }, 'memberPrice'],
    ['a zero price', { price: 0 }, 'price'],
    ['a spec name with "="', { specs: [{ name: 'x=y', value: 'z' }] }, 'specs[0].name'],
  ])('updateSku with %s is BAD_USER_INPUT and writes nothing', async (_, input, field) => {
    const { id, skus } = await createProduct();
    const before = await skuDoc(skus[0].id);
    const product = await svc.db.collection('products').findOne({ _id: new Types.ObjectId(id) });
    const res = await call(UPDATE_SKU, { input: { skuId: skus[0].id, ...input } });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(await skuDoc(skus[0].id)).toEqual(before);
    expect(await svc.db.collection('products').findOne({ _id: new Types.ObjectId(id) })).toEqual(product);
  });

  test('a new price may not undercut a flash sale still to end', async () => {
    const { skus } = await createProduct();
    const flash = await call('mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id } } }', {
      input: {
        skuId: skus[1].id,
        flashPrice: 5000,
        quota: 2,
        perMemberLimit: 1,
        startsAt: new Date(Date.now() + 3600_000).toISOString(),
        endsAt: new Date(Date.now() + 7200_000).toISOString(),
      },
    });
    expect(flash.errors).toBeUndefined();
    expect((await call(UPDATE_SKU, { input: { skuId: skus[1].id, price: 5000 } })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'price',
    });
    expect((await call(UPDATE_SKU, { input: { skuId: skus[1].id, price: 5001 } })).errors).toBeUndefined();
  });

  test('customers are FORBIDDEN and anonymous callers UNAUTHENTICATED from both edits; nothing is written', async () => {
    const { id, skus } = await createProduct();
    const before = { counts: await counts(), sku: await skuDoc(skus[0].id) };
    const productEdit = { input: { productId: id, name: '篡改' } };
    const skuEdit = { input: { skuId: skus[0].id, price: 1 } };
    expect((await call(UPDATE_PRODUCT, productEdit, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(UPDATE_SKU, skuEdit, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(UPDATE_PRODUCT, productEdit, asGateway('catalog', null))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await call(UPDATE_SKU, skuEdit, asGateway('catalog', null))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect({ counts: await counts(), sku: await skuDoc(skus[0].id) }).toEqual(before);
    expect((await call(PRODUCT, { id })).data!.product.name).not.toBe('篡改');
  });

  test('unknown products and SKUs are NOT_FOUND', async () => {
    expect((await call(UPDATE_PRODUCT, { input: { productId: oid(), name: 'x' } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await call(UPDATE_SKU, { input: { skuId: 'nope', price: 100 } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('price quotes carry availability', () => {
  test('a LIST line carries the SKU stock available, a FLASH line the flash sale’s remaining quota', async () => {
    const { skus } = await createProduct();
    const skuId = skus[0].id;
    await svc.bus.request('catalog.stock.reserve', { orderId: randomUUID(), memberId: oid(), lines: [{ skuId, quantity: 3 }] });
    const quote = (memberId?: string) =>
      svc.bus.request('catalog.price.quote', {
        lines: [
          { skuId, quantity: 1 },
          { skuId: skus[1].id, quantity: 2 },
        ],
        ...(memberId ? { memberId } : {}),
      });
    expect((await quote()).lines.map((l) => [l.priceKind, l.available])).toEqual([
      ['LIST', 7],
      ['LIST', 10],
    ]);

    const flash = await call('mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id } } }', {
      input: {
        skuId,
        flashPrice: 9900,
        quota: 4,
        perMemberLimit: 2,
        startsAt: new Date(Date.now() - 1000).toISOString(),
        endsAt: new Date(Date.now() + 3600_000).toISOString(),
      },
    });
    expect(flash.errors).toBeUndefined();
    const flashSaleId = flash.data!.createFlashSale.flashSale.id;
    const buyer = oid();
    await svc.bus.request('catalog.stock.reserve', {
      orderId: randomUUID(),
      memberId: buyer,
      lines: [{ skuId, quantity: 1, flashSaleId }],
    });
    expect((await quote(oid())).lines[0]).toMatchObject({ priceKind: 'FLASH', flashSaleId, unitPrice: 9900, available: 3 });
    // Without a member (or over the limit) it is a LIST line: the regular stock left after the quota was carved out.
    expect((await quote()).lines[0]).toMatchObject({ priceKind: 'LIST', available: 3 });
  });
});
