// Identical subgraph requests in flight at once are sent once (SUBGRAPH_DEDUP): the real gateway
// in front of the real subgraphs, with a proxy before one subgraph that records every request it
// forwards and holds the answers until the test lets them go, so the requests overlap for sure.
import { createServer } from 'node:http';
import { asGateway, eventually, gql, staff, TEST_INTERNAL_SECRET, type GqlResult } from '@flywheel/testing';
import { INTERNAL_TOKEN_HEADER, verifyInternalToken } from '@flywheel/service-kit';
import type { RunningGateway } from '../main';
import { bearer, type InProcessStack } from './in-process-stack';
import { forwardable, readBody, useStackWithServers } from './proxies';

jest.setTimeout(60_000);

const { stack: currentStack, listen } = useStackWithServers();
let stack: InProcessStack;
beforeAll(() => {
  stack = currentStack();
});

interface Forwarded {
  query: string;
  /** Whom the gateway's internal token names: a member id, or null for an anonymous visitor. */
  viewer: string | null;
}

/** A pass-through in front of `subgraph` that records what it forwards and answers only after `release()`. */
async function holdingProxy(subgraph: string): Promise<{ url: string; forwarded: Forwarded[]; release(): void }> {
  const target = stack.subgraphs[subgraph]!.url;
  const forwarded: Forwarded[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const token = String(req.headers[INTERNAL_TOKEN_HEADER]);
      forwarded.push({
        query: (JSON.parse(body) as { query: string }).query,
        viewer: verifyInternalToken(token, TEST_INTERNAL_SECRET, subgraph)?.id ?? null,
      });
      const upstream = await fetch(target, { method: 'POST', headers: forwardable(req.headers), body });
      const answer = await upstream.text();
      await released;
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(answer);
    })();
  });
  return { url: await listen(server), forwarded, release };
}

/** How many subgraph requests the gateway has answered from an identical one in flight. */
function countShared(gw: RunningGateway): () => number {
  const debug = jest.spyOn(gw.logger, 'debug');
  return () => debug.mock.calls.filter((c) => c.includes('subgraph request shared with an identical one in flight')).length;
}

let phoneSeq = 0;
const newPhone = () => `137${String(Date.now() % 1e6).padStart(6, '0')}${String(phoneSeq++ % 100).padStart(2, '0')}`;

/** A member signed in through the stack's own gateway (no proxy in its way). */
async function signIn(): Promise<{ token: string; memberId: string }> {
  const url = stack.gateway.url;
  const phone = newPhone();
  const req = await gql(url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const res = await gql(
    url,
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: req.data!.requestLoginCode.devCode },
  );
  expect(res.errors).toBeUndefined();
  return { token: res.data!.login.accessToken, memberId: res.data!.login.session.member.id };
}

const PRODUCTS = 'query Shelf($first: Int!) { products(first: $first) { edges { node { id name } } } }';

beforeAll(async () => {
  // Something on the shelf, so the answers compared below carry data.
  const created = await gql(
    stack.subgraphs.catalog!.url,
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }',
    { i: { name: '去重测试商品', status: 'ON_SALE', skus: [{ name: '标准', price: 990, stock: 5 }] } },
    asGateway('catalog', staff()),
  );
  expect(created.errors).toBeUndefined();
});

describe('identical subgraph requests in flight at once', () => {
  test('eight identical concurrent anonymous queries reach the subgraph once and all get the same answer', async () => {
    const proxy = await holdingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: proxy.url });
    const shared = countShared(gw);

    const answers = Array.from({ length: 8 }, () => gql(gw.url, PRODUCTS, { first: 5 }));
    // Released only once the other seven wait on the first: the overlap is certain, not hoped for.
    await eventually(async () => proxy.forwarded.length === 1 && shared() === 7);
    proxy.release();
    const results = await Promise.all(answers);

    expect(proxy.forwarded).toHaveLength(1);
    expect(results[0]!.errors).toBeUndefined();
    expect(results[0]!.data!.products.edges.map((e: { node: { name: string } }) => e.node.name)).toContain('去重测试商品');
    for (const r of results) expect(r.data).toEqual(results[0]!.data);
  });

  test('once an answer is in, the same query is sent again (nothing is kept)', async () => {
    const proxy = await holdingProxy('catalog');
    proxy.release();
    const gw = await stack.extraGateway({ CATALOG_URL: proxy.url });
    const first = await gql(gw.url, PRODUCTS, { first: 5 });
    const second = await gql(gw.url, PRODUCTS, { first: 5 });
    expect(second.data).toEqual(first.data);
    expect(proxy.forwarded).toHaveLength(2);
  });

  test('the same query for two different members is not shared: each gets their own answer', async () => {
    const proxy = await holdingProxy('membership');
    const gw = await stack.extraGateway({ MEMBERSHIP_URL: proxy.url });
    const [a, b] = [await signIn(), await signIn()];
    const ME = '{ me { id nickname } }';

    const answerA = gql(gw.url, ME, {}, bearer(a.token));
    await eventually(async () => proxy.forwarded.length === 1);
    // A's request is in flight; B's identical query must still be sent, under B's own token.
    const answerB = gql(gw.url, ME, {}, bearer(b.token));
    await eventually(async () => proxy.forwarded.length === 2);
    proxy.release();
    const [resA, resB] = await Promise.all([answerA, answerB]);

    expect(proxy.forwarded.map((f) => f.viewer).sort()).toEqual([a.memberId, b.memberId].sort());
    expect(proxy.forwarded[0]!.query).toBe(proxy.forwarded[1]!.query);
    expect(resA.errors).toBeUndefined();
    expect(resB.errors).toBeUndefined();
    expect(resA.data!.me.id).toBe(a.memberId);
    expect(resB.data!.me.id).toBe(b.memberId);
  });

  test('mutations are never deduplicated: two identical concurrent mutations both reach the subgraph', async () => {
    const proxy = await holdingProxy('membership');
    const gw = await stack.extraGateway({ MEMBERSHIP_URL: proxy.url });
    const REQUEST_CODE = 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }';
    const phone = newPhone();

    const first = gql(gw.url, REQUEST_CODE, { p: phone });
    await eventually(async () => proxy.forwarded.length === 1);
    const second = gql(gw.url, REQUEST_CODE, { p: phone });
    await eventually(async () => proxy.forwarded.length === 2);
    proxy.release();
    const results: GqlResult[] = await Promise.all([first, second]);

    expect(proxy.forwarded.every((f) => f.query.startsWith('mutation'))).toBe(true);
    for (const r of results) expect(r.status).toBe(200);
  });

  test('with SUBGRAPH_DEDUP=false every request reaches the subgraph', async () => {
    const proxy = await holdingProxy('catalog');
    const gw = await stack.extraGateway({ CATALOG_URL: proxy.url, SUBGRAPH_DEDUP: 'false' });

    const answers = Array.from({ length: 4 }, () => gql(gw.url, PRODUCTS, { first: 5 }));
    await eventually(async () => proxy.forwarded.length === 4);
    proxy.release();
    const results = await Promise.all(answers);

    for (const r of results) {
      expect(r.errors).toBeUndefined();
      expect(r.data).toEqual(results[0]!.data);
    }
  });
});
