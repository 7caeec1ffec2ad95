// Anonymous public queries answered from the gateway's response cache (RESPONSE_CACHE): the real
// gateway in front of the real subgraphs, with a pass-through before a subgraph that records
// every request the gateway sends it, so "answered from the cache" means "the subgraph was not
// asked". Each test has a gateway (and so a cache) of its own.
import { createServer } from 'node:http';
import { asGateway, staff, TEST_INTERNAL_SECRET } from '@flywheel/testing';
import { INTERNAL_TOKEN_HEADER, verifyInternalToken } from '@flywheel/service-kit';
import { asStaff, newCustomer, type InProcessStack } from './in-process-stack';
import { forwardable, readBody, useStackWithServers } from './proxies';

jest.setTimeout(60_000);

const { stack: currentStack, listen } = useStackWithServers();
let stack: InProcessStack;
beforeAll(() => {
  stack = currentStack();
});

interface Answer {
  data?: Record<string, any>;
  errors?: { message: string; extensions?: { code?: string } }[];
  cacheControl: string | null;
  /** Set only on an answer from the cache: seconds since it was stored. */
  age: string | null;
}

async function post(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as Omit<Answer, 'cacheControl' | 'age'>;
  return { ...body, cacheControl: res.headers.get('cache-control'), age: res.headers.get('age') };
}

interface Forwarded {
  query: string;
  /** Whom the gateway's internal token names: a member or staff id, or null for an anonymous visitor. */
  viewer: string | null;
}

/**
 * A pass-through in front of `subgraph` that records each request it forwards. The subgraph's
 * cache-control header goes back with its answer: it is what the gateway's policy is made of.
 */
async function recordingProxy(subgraph: string): Promise<{ url: string; forwarded: Forwarded[] }> {
  const target = stack.subgraphs[subgraph]!.url;
  const forwarded: Forwarded[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      forwarded.push({
        query: (JSON.parse(body) as { query: string }).query,
        viewer: verifyInternalToken(String(req.headers[INTERNAL_TOKEN_HEADER]), TEST_INTERNAL_SECRET, subgraph)?.id ?? null,
      });
      const upstream = await fetch(target, { method: 'POST', headers: forwardable(req.headers), body });
      const headers: Record<string, string> = { 'content-type': upstream.headers.get('content-type') ?? 'application/json' };
      const cacheControl = upstream.headers.get('cache-control');
      if (cacheControl) headers['cache-control'] = cacheControl;
      res.writeHead(upstream.status, headers);
      res.end(await upstream.text());
    })();
  });
  return { url: await listen(server), forwarded };
}

/** Staff writes, sent to the subgraph itself (not through a gateway whose cache is under test). */
async function asStaffAt(subgraph: string, query: string, variables: Record<string, unknown>) {
  const res = await post(stack.subgraphs[subgraph]!.url, query, variables, asGateway(subgraph, staff()));
  expect(res.errors).toBeUndefined();
  return res.data!;
}

let seq = 0;
/** A category of the test's own with one product on sale and one draft in it. */
async function shelf(): Promise<{ categoryId: string; onSale: { id: string; name: string }; draft: { id: string; name: string } }> {
  const n = ++seq;
  const categoryId = (
    await asStaffAt('catalog', 'mutation($i: CreateCategoryInput!) { createCategory(input: $i) { id } }', { i: { name: `缓存类目 ${n}` } })
  ).createCategory.id as string;
  const create = async (name: string, status: 'ON_SALE' | 'DRAFT') => {
    const data = await asStaffAt('catalog', 'mutation($i: CreateProductInput!) { createProduct(input: $i) { id name } }', {
      i: { name, status, categoryId, skus: [{ name: '标准', price: 1290, stock: 9 }] },
    });
    return data.createProduct as { id: string; name: string };
  };
  return { categoryId, onSale: await create(`在售 ${n}`, 'ON_SALE'), draft: await create(`草稿 ${n}`, 'DRAFT') };
}

const SHELF =
  'query Shelf($c: ID!) { products(first: 20, categoryId: $c) { edges { node { id name price { amount currency } inStock } } } }';
const names = (a: Answer) => (a.data!.products.edges as { node: { name: string } }[]).map((e) => e.node.name).sort();

describe('anonymous public queries', () => {
  test('an anonymous category page is answered from the cache the second time: catalog is asked once', async () => {
    const { categoryId, onSale } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url });

    const first = await post(gw.url, SHELF, { c: categoryId });
    const second = await post(gw.url, SHELF, { c: categoryId });

    expect(first.errors).toBeUndefined();
    expect(names(first)).toEqual([onSale.name]);
    expect(second.data).toEqual(first.data);
    expect(catalog.forwarded).toHaveLength(1);
    expect(catalog.forwarded[0]!.viewer).toBeNull();
    // products(…) is hinted 30 s in catalog's schema; the gateway shortens it to its 5 s.
    expect(first.cacheControl).toBe('max-age=5, public');
    expect(first.age).toBeNull();
    expect(second.cacheControl).toBe('max-age=5, public');
    expect(second.age).not.toBeNull();

    // Other variables are another page: asked for, not answered with this one.
    const other = await post(gw.url, SHELF, { c: (await shelf()).categoryId });
    expect(names(other)).not.toEqual(names(first));
    expect(catalog.forwarded).toHaveLength(2);
  });

  test('the home page across content, catalog and live (products resolved as entities) is cached whole', async () => {
    const { onSale } = await shelf();
    const article = await asStaffAt('content', 'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }', {
      i: { title: '缓存的文章', type: 'STORY', summary: '摘要', body: '正文', relatedProductIds: [onSale.id] },
    });
    await asStaffAt('content', 'mutation($i: PublishArticleInput!) { publishArticle(input: $i) { id } }', {
      i: { articleId: article.createArticle.id },
    });
    await asStaffAt('live', 'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }', {
      i: { title: '缓存直播', hostName: '主播', scheduledAt: new Date(Date.now() + 86_400_000).toISOString(), productIds: [onSale.id] },
    });
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url });
    const HOME = `{
      articles(first: 5) { edges { node { id title relatedProducts { id name price { amount } } } } }
      liveRooms(first: 5) { edges { node { id title products { id name inStock } } } }
    }`;

    const first = await post(gw.url, HOME);
    expect(first.errors).toBeUndefined();
    expect(first.data!.articles.edges[0].node.relatedProducts).toEqual([{ id: onSale.id, name: onSale.name, price: { amount: 1290 } }]);
    expect(first.data!.liveRooms.edges[0].node.products[0].name).toBe(onSale.name);
    expect(catalog.forwarded.every((f) => f.query.includes('_entities'))).toBe(true);
    const asked = catalog.forwarded.length;
    expect(asked).toBeGreaterThan(0);
    expect(first.cacheControl).toBe('max-age=5, public');

    const second = await post(gw.url, HOME);
    expect(second.data).toEqual(first.data);
    expect(second.age).not.toBeNull();
    expect(catalog.forwarded).toHaveLength(asked);
  });

  test('a page that also reads a field without a public hint (me, from membership) is not cached, even anonymous', async () => {
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url });
    const MIXED = 'query($c: ID!) { me { id } products(first: 5, categoryId: $c) { edges { node { id } } } }';
    const { categoryId } = await shelf();

    const first = await post(gw.url, MIXED, { c: categoryId });
    const second = await post(gw.url, MIXED, { c: categoryId });

    expect(first.errors).toBeUndefined();
    expect(first.data!.me).toBeNull();
    expect(first.cacheControl).toBe('no-store');
    expect(second.age).toBeNull();
    expect(catalog.forwarded).toHaveLength(2);
  });
});

describe('nothing viewer-specific is shared', () => {
  test("a signed-in customer's query is not answered from the anonymous cache", async () => {
    const { categoryId } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url });
    const customer = newCustomer();

    await post(gw.url, SHELF, { c: categoryId });
    await post(gw.url, SHELF, { c: categoryId });
    expect(catalog.forwarded).toHaveLength(1);
    const theirs = await post(gw.url, SHELF, { c: categoryId }, customer.headers);

    expect(theirs.errors).toBeUndefined();
    expect(theirs.age).toBeNull();
    expect(catalog.forwarded.map((f) => f.viewer)).toEqual([null, customer.id]);
    // Answered for them: a shared cache must not keep it.
    expect(theirs.cacheControl).toBe('max-age=5, private');
  });

  test("a signed-in customer's answer is never stored: neither they nor an anonymous visitor get it back", async () => {
    const { categoryId } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url });
    const customer = newCustomer();

    await post(gw.url, SHELF, { c: categoryId }, customer.headers);
    await post(gw.url, SHELF, { c: categoryId }, customer.headers);
    const anonymous = await post(gw.url, SHELF, { c: categoryId });

    expect(anonymous.age).toBeNull();
    expect(catalog.forwarded.map((f) => f.viewer)).toEqual([customer.id, customer.id, null]);
  });

  test('a staff view with a draft in it never reaches an anonymous visitor', async () => {
    const { categoryId, onSale, draft } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url });
    const staffHeaders = asStaff();

    const staffView = await post(gw.url, SHELF, { c: categoryId }, staffHeaders);
    const anonymous = await post(gw.url, SHELF, { c: categoryId });
    const again = await post(gw.url, SHELF, { c: categoryId });
    const staffAgain = await post(gw.url, SHELF, { c: categoryId }, staffHeaders);

    expect(names(staffView)).toEqual([onSale.name, draft.name].sort());
    expect(staffView.cacheControl).toBe('max-age=5, private');
    expect(names(anonymous)).toEqual([onSale.name]);
    expect(anonymous.age).toBeNull();
    expect(names(again)).toEqual([onSale.name]);
    expect(again.age).not.toBeNull();
    // Staff still see their own view, not the anonymous one now in the cache.
    expect(names(staffAgain)).toEqual([onSale.name, draft.name].sort());
    expect(catalog.forwarded.map((f) => f.viewer === null)).toEqual([false, true, false]);
  });
});

describe('expiry, switches and mutations', () => {
  test('an answer is reused until its max-age runs out, then catalog is asked again', async () => {
    const { categoryId, onSale } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url, RESPONSE_CACHE_MAX_AGE_SECONDS: '3' });

    const first = await post(gw.url, SHELF, { c: categoryId });
    const stored = Date.now();
    await post(gw.url, SHELF, { c: categoryId });
    expect(first.cacheControl).toBe('max-age=3, public');
    expect(catalog.forwarded).toHaveLength(1);
    // A rename within the max-age is not seen; after it, it is.
    await asStaffAt('catalog', 'mutation($i: UpdateProductInput!) { updateProduct(input: $i) { product { id } } }', {
      i: { productId: onSale.id, name: `${onSale.name} 改` },
    });
    expect(names(await post(gw.url, SHELF, { c: categoryId }))).toEqual([onSale.name]);
    expect(catalog.forwarded).toHaveLength(1);

    await new Promise((r) => setTimeout(r, Math.max(0, stored + 3_200 - Date.now())));
    const fresh = await post(gw.url, SHELF, { c: categoryId });
    expect(fresh.age).toBeNull();
    expect(names(fresh)).toEqual([`${onSale.name} 改`]);
    expect(catalog.forwarded).toHaveLength(2);
  });

  test('with RESPONSE_CACHE=false every query reaches the subgraph; the cache-control header stays', async () => {
    const { categoryId } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url, RESPONSE_CACHE: 'false' });

    const first = await post(gw.url, SHELF, { c: categoryId });
    const second = await post(gw.url, SHELF, { c: categoryId });

    expect(second.data).toEqual(first.data);
    expect(second.age).toBeNull();
    expect(catalog.forwarded).toHaveLength(2);
    expect(second.cacheControl).toBe('max-age=5, public');
  });

  test('RESPONSE_CACHE_MAX_AGE_SECONDS=0 caches nothing and tells clients so', async () => {
    const { categoryId } = await shelf();
    const catalog = await recordingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: catalog.url, RESPONSE_CACHE_MAX_AGE_SECONDS: '0' });

    await post(gw.url, SHELF, { c: categoryId });
    const second = await post(gw.url, SHELF, { c: categoryId });

    expect(second.cacheControl).toBe('no-store');
    expect(catalog.forwarded).toHaveLength(2);
  });

  test('an anonymous mutation sent twice reaches the subgraph twice, and is marked no-store', async () => {
    const membership = await recordingProxy('membership');
    const gw = await stack.extraGateway({ MEMBERSHIP_URL: membership.url });
    const REQUEST_CODE = 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }';
    const phone = `135${String(Date.now() % 1e8).padStart(8, '0')}`;

    const first = await post(gw.url, REQUEST_CODE, { p: phone });
    await post(gw.url, REQUEST_CODE, { p: phone });

    expect(first.errors).toBeUndefined();
    expect(first.cacheControl).toBe('no-store');
    expect(membership.forwarded.filter((f) => f.query.startsWith('mutation'))).toHaveLength(2);
  });

  test('a mutation that returns a type hinted public (createProduct → Product) is still no-store, at the subgraph and the gateway', async () => {
    const CREATE = 'mutation($i: CreateProductInput!) { createProduct(input: $i) { id name } }';
    const input = { i: { name: '变更不缓存', status: 'ON_SALE', skus: [{ name: '标准', price: 990, stock: 1 }] } };

    const atSubgraph = await post(stack.subgraphs.catalog!.url, CREATE, input, asGateway('catalog', staff()));
    const atGateway = await post(stack.gateway.url, CREATE, input, asStaff());
    // The same hinted type read by a query is cacheable: the mutation, not the type, decides.
    const read = await post(
      stack.subgraphs.catalog!.url,
      'query($id: ID!) { product(id: $id) { id name } }',
      { id: atSubgraph.data!.createProduct.id },
      asGateway('catalog', null),
    );

    expect(atSubgraph.errors).toBeUndefined();
    expect(atSubgraph.cacheControl).toBe('no-store');
    expect(atGateway.errors).toBeUndefined();
    expect(atGateway.cacheControl).toBe('no-store');
    expect(read.cacheControl).toBe('max-age=30, public');
  });
});
