// The real gateway in front of the seven real subgraphs (in this process, on free ports), on the
// real FerretDB and a NATS of this file's own. Everything goes through the gateway's HTTP port.
import { asGateway, eventually, gql, staff, TEST_AUTH_SECRET, TEST_INTERNAL_SECRET } from '@flywheel/testing';
import { signInternalToken, signJwt, type RunningService } from '@flywheel/service-kit';
import type { RunningGateway } from '../main';
import { startInProcessStack, type InProcessStack } from './in-process-stack';

let stack: InProcessStack;
let subgraphs: Record<string, RunningService>;
let gw: RunningGateway;
let prodGw: RunningGateway;

beforeAll(async () => {
  stack = await startInProcessStack();
  subgraphs = stack.subgraphs;
  gw = stack.gateway;
  prodGw = await stack.extraGateway({ NODE_ENV: 'production' });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
let phoneSeq = 0;
const newPhone = () => `139${String(Date.now() % 1e6).padStart(6, '0')}${String(phoneSeq++).padStart(2, '0')}`;

async function signIn(phone = newPhone()): Promise<{ token: string; memberId: string }> {
  const req = await gql(gw.url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const code = req.data!.requestLoginCode.devCode;
  const res = await gql(
    gw.url,
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    {
      p: phone,
      c: code,
    },
  );
  expect(res.errors).toBeUndefined();
  return { token: res.data!.login.accessToken, memberId: res.data!.login.session.member.id };
}

describe('through the gateway', () => {
  test('a signed-in member queries across five subgraphs in one request; registration reaches referral and community over JetStream', async () => {
    const { token, memberId } = await signIn();
    const query = `{
      me { id nickname tier inviteCode { code } groups { name } orders(first: 5) { edges { node { id } } } }
      products(first: 3) { edges { node { id } } }
      articles(first: 3) { edges { node { id } } }
    }`;
    const res = await eventually(async () => {
      const r = await gql(gw.url, query, {}, bearer(token));
      return r.data?.me?.inviteCode && r.data.me.groups.length ? r : null;
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.me).toMatchObject({ id: memberId, tier: 'REGULAR', orders: { edges: [] } });
    expect(res.data!.me.inviteCode.code).toMatch(/^[A-Z0-9]{8}$/);
    expect(res.data!.me.groups.map((g: { name: string }) => g.name)).toContain('新人福利群');
  });

  test('the placed order appears under Member.orders, priced by catalog over request/reply', async () => {
    const staffHeaders = asGateway('catalog', staff());
    const created = await gql(
      subgraphs.catalog!.url,
      'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
      { i: { name: '测试商品', status: 'ON_SALE', skus: [{ name: '标准', price: 1990, stock: 10 }] } },
      staffHeaders,
    );
    expect(created.errors).toBeUndefined();
    const skuId = created.data!.createProduct.skus[0].id;
    const { token, memberId } = await signIn();
    const placed = await gql(
      gw.url,
      'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total { amount currency } } }',
      { i: { lines: [{ skuId, quantity: 3 }], idempotencyKey: 'k-1' } },
      bearer(token),
    );
    expect(placed.errors).toBeUndefined();
    expect(placed.data!.placeOrder).toMatchObject({ status: 'PENDING_PAYMENT', total: { amount: 5970, currency: 'CNY' } });
    const mine = await gql(
      gw.url,
      '{ me { id orders(first: 5) { edges { node { id lines { quantity product { name } } } } } } }',
      {},
      bearer(token),
    );
    expect(mine.data!.me.id).toBe(memberId);
    expect(mine.data!.me.orders.edges[0].node).toEqual({
      id: placed.data!.placeOrder.id,
      lines: [{ quantity: 3, product: { name: '测试商品' } }],
    });
  });

  test('health endpoints answer', async () => {
    const base = gw.url.replace('/graphql', '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });
});

describe('bad input at the gateway', () => {
  test('malformed GraphQL is GRAPHQL_PARSE_FAILED', async () => {
    const res = await gql(gw.url, '{ products(first: 3) { edges { node { id }');
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  test('an unknown field is GRAPHQL_VALIDATION_FAILED, without suggestions in production', async () => {
    const dev = await gql(gw.url, '{ prodcts { id } }');
    expect(dev.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const prod = await gql(prodGw.url, '{ prodcts { id } }');
    expect(prod.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(prod.errors?.[0]?.message).not.toMatch(/Did you mean/);
  });

  test('a token with a wrong signature is UNAUTHENTICATED with HTTP 401', async () => {
    const forged = signJwt(
      { iss: 'flywheel-membership', aud: 'flywheel-gateway', sub: 'x', roles: ['STAFF'], typ: 'access' },
      'not-the-secret-not-the-secret-000000',
      600,
    );
    const res = await gql(gw.url, '{ session { roles } }', {}, bearer(forged));
    expect(res.status).toBe(401);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('an expired token is UNAUTHENTICATED and says so', async () => {
    const expired = signJwt(
      { iss: 'flywheel-membership', aud: 'flywheel-gateway', sub: 'x', roles: ['CUSTOMER'], typ: 'access' },
      TEST_AUTH_SECRET,
      60,
      Date.now() - 3_600_000,
    );
    const res = await gql(gw.url, '{ session { roles } }', {}, bearer(expired));
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.errors?.[0]?.message).toMatch(/expired/);
  });

  test('identity headers sent by a client are ignored: a forged internal token does not make anyone staff', async () => {
    const forged = {
      'flywheel-internal-token': signInternalToken(TEST_INTERNAL_SECRET, 'membership', staff()),
      'x-user-id': 'staff-1',
      'x-roles': 'STAFF',
    };
    const res = await gql(gw.url, '{ session { roles } members(first: 1) { edges { cursor } } }', {}, forged);
    expect(res.data?.session ?? { roles: [] }).toEqual({ roles: [] });
    expect(res.errors?.[0]?.extensions?.code).toMatch(/UNAUTHENTICATED|FORBIDDEN/);
  });

  test('every subgraph refuses a direct call without the internal token', async () => {
    for (const s of Object.values(subgraphs)) {
      const res = await gql(s.url, '{ __typename }');
      expect({ name: s.name, status: res.status, code: res.errors?.[0]?.extensions?.code }).toEqual({
        name: s.name,
        status: 401,
        code: 'UNAUTHENTICATED',
      });
    }
  });

  test('queries deeper than the limit, or too costly, are refused before any subgraph is called', async () => {
    const deep = `{ me { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { invitedBy { id } } } } } } } } } } } } }`;
    const d = await gql(gw.url, deep);
    expect(d.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(d.errors?.[0]?.message).toMatch(/depth limit of 12/);
    const costly =
      '{ products(first: 100) { edges { node { skus { specs { name } } category { children { children { children { name } } } } } } } }';
    const c = await gql(gw.url, costly);
    expect(c.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(c.errors?.[0]?.message).toMatch(/cost/);
  });

  test('CSRF prevention: a simple cross-site request is refused', async () => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: '{ session { roles } }' }),
    });
    expect(res.status).toBe(400);
    const get = await fetch(`${gw.url}?query=${encodeURIComponent('{ session { roles } }')}`);
    expect(get.status).toBe(400);
  });
});

describe('production mode', () => {
  test('introspection is off and no IDE is served', async () => {
    const res = await gql(prodGw.url, '{ __schema { types { name } } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect((await fetch(prodGw.url.replace('/graphql', '/'))).status).toBe(404);
  });

  test('requests past the per-identity rate limit get 429 RATE_LIMITED with Retry-After', async () => {
    const limited = await stack.extraGateway({ NODE_ENV: 'production', RATE_LIMIT_PER_MINUTE: '5' });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await gql(limited.url, '{ session { roles } }')).status);
    // A bucket of 5 refills one request per 12 s: this loop takes far less.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const res = await fetch(limited.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ __typename }"}',
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('RATE_LIMITED');
  });
});

test('outside production the IDE is served from installed packages, with no CDN', async () => {
  const base = gw.url.replace('/graphql', '');
  const html = await (await fetch(`${base}/`)).text();
  expect(html).toContain('/ide/graphiql.js');
  expect(html).not.toMatch(/src="https?:/);
  for (const asset of ['/ide/graphiql.js', '/ide/react.js', '/ide/react-dom.js', '/ide/graphiql.css']) {
    const res = await fetch(`${base}${asset}`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  }
});
