import { Types } from 'mongoose';
import { eventually, gql, privateNats, serviceEnv, TEST_AUTH_SECRET, TEST_INTERNAL_SECRET, type InfraProcess } from '@flywheel/testing';
import { signJwt } from '@flywheel/service-kit';
import { loadGatewayConfig } from '../../../../../gateway/src/config';
import { start as startGateway, type RunningGateway } from '../../../../../gateway/src/main';
import { loadServiceConfig } from '../../config';
import { start, type RunningCatalog } from '../../main';
import { MAX_FAVOURITES, MAX_VIEWED } from '../service';

// Favourites (收藏) and recently viewed (足迹) as a frontend sees them: the real gateway in front of
// the real catalog subgraph, on the real FerretDB and NATS.

let nats: InfraProcess;
let svc: RunningCatalog;
let gateway: RunningGateway;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('catalog', nats.url)));
  gateway = await startGateway(
    loadGatewayConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      PORT: '0',
      HOST: '127.0.0.1',
      INTERNAL_TOKEN_SECRET: TEST_INTERNAL_SECRET,
      AUTH_TOKEN_SECRET: TEST_AUTH_SECRET,
      CATALOG_URL: svc.url,
      RATE_LIMIT_PER_MINUTE: '100000',
    }),
  );
});
afterAll(async () => {
  await gateway?.stop();
  await svc?.db.dropDatabase().catch(() => undefined);
  await svc?.stop();
  await nats?.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const bearer = (sub: string, roles: ('CUSTOMER' | 'STAFF')[]) => ({
  authorization: `Bearer ${signJwt({ iss: 'flywheel-membership', aud: 'flywheel-gateway', sub, roles, typ: 'access' }, TEST_AUTH_SECRET, 3600)}`,
});
const asStaff = () => bearer(oid(), ['STAFF']);
const newMember = () => {
  const id = oid();
  return { id, headers: bearer(id, ['CUSTOMER']) };
};
const call = (query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  gql(gateway.url, query, variables, headers);
async function ok<T = Record<string, any>>(query: string, variables: Record<string, unknown>, headers: Record<string, string>): Promise<T> {
  const res = await call(query, variables, headers);
  expect(res.errors).toBeUndefined();
  return res.data as T;
}

let seq = 0;
async function createProduct(status = 'ON_SALE', stock = 5): Promise<string> {
  const data = await ok(
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }',
    { i: { name: `收藏测试 ${++seq}`, status, skus: [{ name: '标准', price: 1000 + seq, stock }] } },
    asStaff(),
  );
  return data.createProduct.id;
}

const ADD = 'mutation($p: ID!) { addFavouriteProduct(input: { productId: $p }) { favourite { productId favouritedAt product { id } } } }';
const REMOVE = 'mutation($p: ID!) { removeFavouriteProduct(input: { productId: $p }) { productId removed } }';
const FAVOURITES = `query($m: ID, $first: Int, $after: String) { favouriteProducts(memberId: $m, first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { productId favouritedAt product { id status inStock favourited price { amount } } } } } }`;
const VIEW = 'mutation($p: ID!) { recordProductView(input: { productId: $p }) { view { productId viewedAt } } }';
const VIEWED = `query($m: ID, $first: Int, $after: String) { recentlyViewedProducts(memberId: $m, first: $first, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { productId viewedAt product { id status } } } } }`;

type Page = { pageInfo: { hasNextPage: boolean; endCursor: string | null }; edges: { node: { productId: string } }[] };

/** Every product id of a list, walking its pages `first` at a time. */
async function walk(query: string, field: string, headers: Record<string, string>, first: number, memberId?: string) {
  const ids: string[] = [];
  let after: string | null = null;
  for (let pages = 0; pages < 50; pages++) {
    const page: Page = (await ok<Record<string, Page>>(query, { first, after, m: memberId }, headers))[field]!;
    ids.push(...page.edges.map((e) => e.node.productId));
    if (!page.pageInfo.hasNextPage) return { ids, pages: pages + 1 };
    after = page.pageInfo.endCursor;
  }
  throw new Error('paging did not end');
}

describe('favourites', () => {
  test('add, list newest first across pages with current price and stock, remove; staff read them by member id', async () => {
    const me = newMember();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await createProduct('ON_SALE', i === 0 ? 0 : 5));
      await ok(ADD, { p: ids[i] }, me.headers);
    }
    const first = await ok(FAVOURITES, { first: 2 }, me.headers);
    expect(first.favouriteProducts.totalCount).toBe(5);
    expect(first.favouriteProducts.edges.map((e: { node: { productId: string } }) => e.node.productId)).toEqual([ids[4], ids[3]]);
    expect(first.favouriteProducts.edges[0].node.product).toMatchObject({ id: ids[4], status: 'ON_SALE', inStock: true, favourited: true });
    const all = await walk(FAVOURITES, 'favouriteProducts', me.headers, 2);
    expect(all).toEqual({ ids: [...ids].reverse(), pages: 3 });

    // The product as it is now, not a copy: taken off the shelf, it says so.
    await ok('mutation($p: ID!) { setProductStatus(input: { productId: $p, status: OFF_SHELF }) { id } }', { p: ids[0] }, asStaff());
    const last = await ok(FAVOURITES, { first: 1, after: first.favouriteProducts.edges[0].cursor }, me.headers);
    expect(last.favouriteProducts.edges[0].node.productId).toBe(ids[3]);
    const tail = (await ok(FAVOURITES, { first: 50 }, me.headers)).favouriteProducts.edges.at(-1).node;
    await eventually(async () => {
      const n = (await ok(FAVOURITES, { first: 50 }, me.headers)).favouriteProducts.edges.at(-1).node;
      return n.product.status === 'OFF_SHELF' && n.product.inStock === false;
    });
    expect(tail.productId).toBe(ids[0]);

    expect((await ok(REMOVE, { p: ids[2] }, me.headers)).removeFavouriteProduct).toEqual({ productId: ids[2], removed: true });
    expect((await ok(REMOVE, { p: ids[2] }, me.headers)).removeFavouriteProduct).toEqual({ productId: ids[2], removed: false });
    const staffView = await walk(FAVOURITES, 'favouriteProducts', asStaff(), 10, me.id);
    expect(staffView.ids).toEqual([ids[4], ids[3], ids[1], ids[0]]);
    const product = await ok('query($p: ID!) { product(id: $p) { favourited } }', { p: ids[2] }, me.headers);
    expect(product.product.favourited).toBe(false);
  });

  test('ten concurrent adds of one product leave one favourite, keeping the first time', async () => {
    const me = newMember();
    const p = await createProduct();
    const results = await Promise.all(Array.from({ length: 10 }, () => call(ADD, { p }, me.headers)));
    for (const r of results) expect(r.errors).toBeUndefined();
    const times = new Set(results.map((r) => r.data!.addFavouriteProduct.favourite.favouritedAt));
    const list = await ok(FAVOURITES, { first: 10 }, me.headers);
    expect(list.favouriteProducts.totalCount).toBe(1);
    expect(list.favouriteProducts.edges).toHaveLength(1);
    expect(await svc.db.collection('favourites').countDocuments({ memberId: me.id })).toBe(1);
    expect(times.has(list.favouriteProducts.edges[0].node.favouritedAt)).toBe(true);
    // And again later: still the first one.
    const again = await ok(ADD, { p }, me.headers);
    expect(again.addFavouriteProduct.favourite.favouritedAt).toBe(list.favouriteProducts.edges[0].node.favouritedAt);
  });

  test(`a favourite past the bound of ${MAX_FAVOURITES} is refused with CONFLICT; removing one makes room; racing adds never pass the bound`, async () => {
    const me = newMember();
    const at = new Date(Date.now() - 3_600_000);
    await svc.db.collection('favourites').insertMany(
      Array.from({ length: MAX_FAVOURITES - 1 }, (_, i) => {
        const productId = oid();
        return { _id: `${me.id}:${productId}` as never, memberId: me.id, productId, at: new Date(at.getTime() + i) };
      }),
    );
    const [p1, p2, p3, p4] = [await createProduct(), await createProduct(), await createProduct(), await createProduct()];
    await ok(ADD, { p: p1 }, me.headers);
    const refused = await call(ADD, { p: p2 }, me.headers);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', limit: MAX_FAVOURITES });
    expect(refused.errors?.[0]?.message).toMatch(/At most 500 favourites/);
    // Re-adding one already there is still fine at the bound.
    expect((await call(ADD, { p: p1 }, me.headers)).errors).toBeUndefined();
    await ok(REMOVE, { p: p1 }, me.headers);
    // One free place, three members of a race for it: at most one gets it.
    const race = await Promise.all([p2, p3, p4].map((p) => call(ADD, { p }, me.headers)));
    const won = race.filter((r) => !r.errors).length;
    expect(won).toBeLessThanOrEqual(1);
    for (const r of race.filter((x) => x.errors)) expect(r.errors![0]!.extensions?.code).toBe('CONFLICT');
    expect(await svc.db.collection('favourites').countDocuments({ memberId: me.id })).toBe(MAX_FAVOURITES - 1 + won);
  });

  test('anonymous callers are UNAUTHENTICATED, an unknown or draft product is NOT_FOUND, another member never sees mine', async () => {
    const p = await createProduct();
    for (const q of [
      [ADD, { p }],
      [REMOVE, { p }],
      [FAVOURITES, {}],
      [VIEW, { p }],
      [VIEWED, {}],
    ] as const) {
      const res = await call(q[0], q[1]);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const anonymous = await ok('query($p: ID!) { product(id: $p) { id favourited } }', { p }, {});
    expect(anonymous.product).toEqual({ id: p, favourited: false });

    const me = newMember();
    const other = newMember();
    expect((await call(ADD, { p: oid() }, me.headers)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await call(ADD, { p: await createProduct('DRAFT') }, me.headers)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await call(ADD, { p: 'nope' }, me.headers)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    await ok(ADD, { p }, me.headers);
    await ok(VIEW, { p }, me.headers);
    expect((await ok(FAVOURITES, {}, other.headers)).favouriteProducts.edges).toEqual([]);
    expect((await ok(VIEWED, {}, other.headers)).recentlyViewedProducts.edges).toEqual([]);
    expect((await call(FAVOURITES, { m: me.id }, other.headers)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(VIEWED, { m: me.id }, other.headers)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const theirs = await ok('query($p: ID!) { product(id: $p) { favourited } }', { p }, other.headers);
    expect(theirs.product.favourited).toBe(false);
    // A favourite whose product is gone is listed, marked by a null product.
    await svc.db
      .collection('favourites')
      .insertOne({ _id: `${me.id}:${oid()}` as never, memberId: me.id, productId: oid(), at: new Date() });
    const mine = (await ok(FAVOURITES, {}, me.headers)).favouriteProducts.edges.map((e: { node: { product: unknown } }) => e.node.product);
    expect(mine).toEqual([null, expect.objectContaining({ id: p })]);
  });
});

describe('recently viewed', () => {
  const viewedIds = async (headers: Record<string, string>, first = 50) =>
    (await ok(VIEWED, { first }, headers)).recentlyViewedProducts.edges.map((e: { node: { productId: string } }) => e.node.productId);

  test('a product viewed again moves to the top and is kept once; pages; remove one; clear', async () => {
    const me = newMember();
    const [a, b, c] = [await createProduct(), await createProduct(), await createProduct()];
    for (const p of [a, b, c, a]) await ok(VIEW, { p }, me.headers);
    expect(await viewedIds(me.headers)).toEqual([a, c, b]);
    expect(await walk(VIEWED, 'recentlyViewedProducts', me.headers, 2)).toEqual({ ids: [a, c, b], pages: 2 });

    // Two tabs viewing at once: both views land, each product once.
    await Promise.all([b, c, b, c].map((p) => call(VIEW, { p }, me.headers)));
    expect((await viewedIds(me.headers)).sort()).toEqual([a, b, c].sort());
    expect((await viewedIds(me.headers)).at(-1)).toBe(a);

    // An unpublished product stays listed with its current status; a read does not write.
    await ok('mutation($p: ID!) { setProductStatus(input: { productId: $p, status: OFF_SHELF }) { id } }', { p: a }, asStaff());
    await eventually(async () => {
      const edges = (await ok(VIEWED, {}, me.headers)).recentlyViewedProducts.edges;
      return edges.find((e: { node: { productId: string } }) => e.node.productId === a)?.node.product.status === 'OFF_SHELF';
    });
    await ok('query($p: ID!) { product(id: $p) { id } }', { p: c }, me.headers);
    expect((await viewedIds(me.headers)).at(-1)).toBe(a);

    expect(
      (await ok('mutation($p: ID!) { removeRecentlyViewedProduct(input: { productId: $p }) { removed } }', { p: b }, me.headers))
        .removeRecentlyViewedProduct.removed,
    ).toBe(true);
    expect(await viewedIds(me.headers)).not.toContain(b);
    expect((await ok('mutation { clearRecentlyViewed { cleared } }', {}, me.headers)).clearRecentlyViewed.cleared).toBe(2);
    expect(await viewedIds(me.headers)).toEqual([]);
  });

  test(`only the latest ${MAX_VIEWED} are kept: a new view drops the oldest`, async () => {
    const me = newMember();
    const base = Date.now() - 3_600_000;
    const old = Array.from({ length: MAX_VIEWED }, (_, i) => ({ productId: oid(), at: new Date(base + i) }));
    await svc.db
      .collection('product_views')
      .insertMany(old.map((v) => ({ _id: `${me.id}:${v.productId}` as never, memberId: me.id, productId: v.productId, at: v.at })));
    const p = await createProduct();
    await ok(VIEW, { p }, me.headers);
    const listed = await walk(VIEWED, 'recentlyViewedProducts', me.headers, 50);
    expect(listed.ids).toHaveLength(MAX_VIEWED);
    expect(listed.ids[0]).toBe(p);
    expect(listed.ids).not.toContain(old[0]!.productId);
    expect(listed.ids.at(-1)).toBe(old[1]!.productId);
    expect(await svc.db.collection('product_views').countDocuments({ memberId: me.id })).toBe(MAX_VIEWED);
  });
});

test('membership.member.erased removes the member’s favourites and views, and a redelivery is a no-op', async () => {
  const me = newMember();
  const keep = newMember();
  const p = await createProduct();
  for (const m of [me, keep]) {
    await ok(ADD, { p }, m.headers);
    await ok(VIEW, { p }, m.headers);
  }
  await svc.bus.publish('membership.member.erased', { memberId: me.id }, { id: `erased-${me.id}` });
  await eventually(async () => (await svc.db.collection('favourites').countDocuments({ memberId: me.id })) === 0);
  await eventually(async () => (await svc.db.collection('product_views').countDocuments({ memberId: me.id })) === 0);
  await svc.bus.publish('membership.member.erased', { memberId: me.id }, { id: `erased-${me.id}-again` });
  await new Promise((r) => setTimeout(r, 300));
  expect((await ok(FAVOURITES, {}, keep.headers)).favouriteProducts.totalCount).toBe(1);
  expect((await ok(VIEWED, {}, keep.headers)).recentlyViewedProducts.edges).toHaveLength(1);
  expect((await ok(FAVOURITES, {}, me.headers)).favouriteProducts.totalCount).toBe(0);
});
