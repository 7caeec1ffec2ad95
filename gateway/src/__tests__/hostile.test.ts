// Hostile clients at the gateway (issue 10): documents that cost more than they look, calls
// multiplied by aliases, a spoofed client address, and a subgraph that hangs or is down. The real
// gateway in front of the real subgraphs; everything goes through the gateway's HTTP port.
import { createServer } from 'node:http';
import { freePort, gql } from '@flywheel/testing';
import { newCustomer, type InProcessStack } from './in-process-stack';
import { forwardable, readBody, useStackWithServers } from './proxies';

jest.setTimeout(60_000);

const { stack: currentStack, listen: listenOn } = useStackWithServers();
let stack: InProcessStack;
beforeAll(() => {
  stack = currentStack();
});

const url = () => stack.gateway.url;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
let phoneSeq = 0;
const newPhone = () => `136${String(Date.now() % 1e6).padStart(6, '0')}${String(phoneSeq++ % 100).padStart(2, '0')}`;

/** A pass-through in front of a subgraph that counts how often `field` is called through it. */
async function countingProxy(target: string, field: string): Promise<{ url: string; calls: () => number }> {
  let calls = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const query = (JSON.parse(body) as { query: string }).query;
      calls += (query.match(new RegExp(`\\b${field}\\b`, 'g')) ?? []).length;
      const upstream = await fetch(target, { method: 'POST', headers: forwardable(req.headers), body });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(await upstream.text());
    })();
  });
  return { url: await listenOn(server), calls: () => calls };
}

async function signIn(): Promise<{ token: string; memberId: string }> {
  const phone = newPhone();
  const req = await gql(url(), 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const res = await gql(
    url(),
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: req.data!.requestLoginCode.devCode },
  );
  expect(res.errors).toBeUndefined();
  return { token: res.data!.login.accessToken, memberId: res.data!.login.session.member.id };
}

/** Fragments that each spread the next one twice: 2^levels selections if walked naively. */
function fragmentBomb(levels: number, leaf = 'session { roles }'): string {
  const fragments = Array.from({ length: levels }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return `query Bomb { ...F0 }\n${fragments.join('\n')}\nfragment F${levels} on Query { ${leaf} }`;
}

describe('hostile documents are refused as validation errors, and the gateway keeps answering', () => {
  test('a fragment bomb (30 levels, each fragment spreading the next twice) is GRAPHQL_VALIDATION_FAILED; a query sent alongside is answered', async () => {
    const started = Date.now();
    const [bomb, normal] = await Promise.all([gql(url(), fragmentBomb(30)), gql(url(), '{ session { roles } }')]);
    expect(bomb.status).toBe(400);
    expect(bomb.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(normal.errors).toBeUndefined();
    expect(normal.data).toEqual({ session: { roles: [] } });
    // Walked naively this document is 2^30 spreads (hours of a blocked event loop); refusing it
    // is linear in its size. Generous: a loaded machine answers in milliseconds.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('a fragment bomb of nothing but __typename is refused too (each spread has a cost of its own)', async () => {
    const res = await gql(url(), fragmentBomb(30, '__typename'));
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0]?.message).toMatch(/cost/);
  });

  test('cyclic fragments (...A → ...B → ...A) are a 400 GRAPHQL_VALIDATION_FAILED, not a 500', async () => {
    const res = await gql(
      url(),
      'query Cycle { ...A } fragment A on Query { session { roles } ...B } fragment B on Query { me { id } ...A }',
    );
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.map((e) => e.message).join('\n')).toMatch(/Cannot spread fragment "A" within itself/);
  });

  test('more aliases than MAX_ALIASES (16 of one field against 15) are refused; 15 are answered', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: session { roles }`).join(' ')} }`;
    const over = await gql(url(), aliases(16));
    expect(over.status).toBe(400);
    expect(over.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(over.errors?.[0]?.message).toMatch(/alias/i);
    const within = await gql(url(), aliases(15));
    expect(within.errors).toBeUndefined();
    expect(Object.keys(within.data!)).toHaveLength(15);
  });

  test('aliases hidden in a fragment spread twice count twice', async () => {
    const fields = Array.from({ length: 8 }, (_, i) => `s${i}: session { roles }`).join(' ');
    const res = await gql(url(), `{ ...F ... on Query { ...F } } fragment F on Query { ${fields} }`);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0]?.message).toMatch(/alias/i);
  });

  test('more directives than MAX_DIRECTIVES are refused', async () => {
    // One @include per inline fragment (a location takes each directive once), 60 of them.
    const res = await gql(url(), `{ ${'... @include(if: true) { session { roles } } '.repeat(60)} }`);
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0]?.message).toMatch(/directive/i);
  });

  test('a document past MAX_QUERY_TOKENS is refused by the parser', async () => {
    const res = await gql(url(), `{ session { ${'roles '.repeat(5_000)} } }`);
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(res.errors?.[0]?.message).toMatch(/tokens/);
  });

  test('one operation per request: a batched JSON array is refused', async () => {
    const res = await fetch(url(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ session { roles } }' }, { query: '{ session { roles } }' }]),
    });
    expect(res.status).toBe(400);
  });
});

describe('sensitive mutations count once per call, not per HTTP request', () => {
  test('three aliased requestLoginCode calls use a budget of 3: the next call is RATE_LIMITED and membership never sees it', async () => {
    const proxy = await countingProxy(stack.subgraphs.membership!.url, 'requestLoginCode');
    const gw = await stack.extraGateway({ MEMBERSHIP_URL: proxy.url, SENSITIVE_CALLS_PER_MINUTE: '3', TRUSTED_PROXY_HOPS: '1' });
    const clientA = { 'x-forwarded-for': '198.51.100.7' };
    const clientB = { 'x-forwarded-for': '198.51.100.8' };
    const codes = (n: number) =>
      `mutation { ${Array.from({ length: n }, (_, i) => `c${i}: requestLoginCode(input: { phone: "${newPhone()}" }) { devCode }`).join(' ')} }`;

    const three = await gql(gw.url, codes(3), {}, clientA);
    expect(three.errors).toBeUndefined();
    expect(Object.values(three.data!).every((p) => typeof (p as { devCode: unknown }).devCode === 'string')).toBe(true);
    expect(proxy.calls()).toBe(3);

    const fourth = await gql(gw.url, codes(1), {}, clientA);
    expect(fourth.status).toBe(429);
    expect(fourth.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(fourth.data ?? null).toBeNull();

    // Four calls in one request against a fresh budget of three: refused whole, nothing sent.
    const four = await gql(gw.url, codes(4), {}, clientB);
    expect(four.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    // A fragment does not hide them either.
    const hidden = await gql(
      gw.url,
      `mutation { ...M } fragment M on Mutation { x: requestLoginCode(input: { phone: "${newPhone()}" }) { devCode } ... on Mutation { y: requestLoginCode(input: { phone: "${newPhone()}" }) { devCode } } }`,
      {},
      clientA,
    );
    expect(hidden.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(proxy.calls()).toBe(3);

    // A signed-in member is budgeted as themself, not as the address they share.
    const member = await gql(gw.url, codes(1), {}, { ...clientA, ...newCustomer().headers });
    expect(member.errors).toBeUndefined();
    expect(proxy.calls()).toBe(4);
  });
});

describe('the client address behind a proxy', () => {
  const session = '{ session { roles } }';

  test('with TRUSTED_PROXY_HOPS=0 (the default) a spoofed X-Forwarded-For does not change the rate-limit bucket', async () => {
    const gw = await stack.extraGateway({ RATE_LIMIT_PER_MINUTE: '3' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await gql(gw.url, session, {}, { 'x-forwarded-for': `203.0.113.${i + 1}` })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  test('with TRUSTED_PROXY_HOPS=1 the address the proxy appended is the bucket: two clients behind one proxy are limited apart', async () => {
    const gw = await stack.extraGateway({ RATE_LIMIT_PER_MINUTE: '3', TRUSTED_PROXY_HOPS: '1' });
    const as = (xff: string) => gql(gw.url, session, {}, { 'x-forwarded-for': xff });
    const a: number[] = [];
    for (let i = 0; i < 3; i++) a.push((await as('203.0.113.10')).status);
    expect(a).toEqual([200, 200, 200]);
    // The client may prepend anything; only the entry the trusted proxy appended counts.
    expect((await as('10.0.0.1, 203.0.113.10')).status).toBe(429);
    expect((await as('203.0.113.11')).status).toBe(200);
  });
});

describe('a slow or down subgraph', () => {
  const ME = '{ me { id nickname groups { name } } }';

  test('a community that never answers: me still answers, groups is null with an UNAVAILABLE error, within the timeout bound', async () => {
    const hung = await listenOn(createServer(() => undefined));
    const gw = await stack.extraGateway({ COMMUNITY_URL: hung, SUBGRAPH_TIMEOUT_MS: '1000' });
    const { token, memberId } = await signIn();
    const started = Date.now();
    const res = await gql(gw.url, ME, {}, bearer(token));
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.data!.me).toMatchObject({ id: memberId, groups: null });
    expect(typeof res.data!.me.nickname).toBe('string');
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['UNAVAILABLE']);
    expect(elapsed).toBeLessThan(5 * 1000);
  });

  test('a community that is down (connection refused): me answers with groups null and UNAVAILABLE, nothing internal leaks', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/graphql`;
    const gw = await stack.extraGateway({ COMMUNITY_URL: closed });
    const { token, memberId } = await signIn();
    const res = await gql(gw.url, ME, {}, bearer(token));
    expect(res.data!.me).toMatchObject({ id: memberId, groups: null });
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
    const text = JSON.stringify(res.errors);
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toMatch(/stack|ECONNREFUSED/i);

    // A root field owned by the down subgraph: an UNAVAILABLE error, not a 500.
    const root = await gql(gw.url, '{ groups(first: 1) { edges { node { id } } } }');
    expect(root.status).toBe(200);
    expect(root.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
  });

  test('the orders a member sees are null with UNAVAILABLE when orders is down; the rest of me answers', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/graphql`;
    const gw = await stack.extraGateway({ ORDERS_URL: closed });
    const { token, memberId } = await signIn();
    const res = await gql(gw.url, '{ me { id tier orders(first: 5) { edges { node { id } } } } }', {}, bearer(token));
    expect(res.data!.me).toEqual({ id: memberId, tier: 'REGULAR', orders: null });
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAVAILABLE');
  });
});
