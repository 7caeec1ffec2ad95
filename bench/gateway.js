#!/usr/bin/env node
// Gateways side by side, in one run, on the same subgraphs and the same supergraph
// (gateway/supergraph.graphql): ours (the stack's own gateway process), a stock @apollo/gateway
// (default fetcher and settings) under a stock @apollo/server standalone server, and Hive Gateway
// (@graphql-hive/gateway's runtime over node:http). The two peers run in child processes of
// this script, as ours runs in its own, so none shares an event loop with the load generator.
// Queries: (a) the anonymous home page (content + catalog + live), (b) a signed-in `me` across
// membership, orders, community and referral, (c) a product list. Every gateway must give the
// same `data` without errors, or the run fails. Rounds interleave the gateways per query, so
// machine noise hits all three alike; each figure is the median over the rounds.
// Prints one JSON line: per query and gateway { rps, p50Ms, p99Ms }, and ours/stock, ours/Hive.
const { fork } = require('node:child_process');
const { readFileSync } = require('node:fs');
const http = require('node:http');
const { dirname, join } = require('node:path');
const { randomBytes } = require('node:crypto');
const { verifyJwt, signInternalToken, INTERNAL_TOKEN_HEADER } = require('../packages/service-kit/dist/tokens');

const SUPERGRAPH = join(__dirname, '../gateway/supergraph.graphql');
// The service registry: every subgraph, in composition order.
const SUBGRAPHS = Object.keys(require('../packages/events/src/services.json').subgraphs);

// ---------------------------------------------------------------------------------------------
// The peers, each in a child process (`node bench/gateway.js serve-<peer>`), configured through
// BENCH_PEER (JSON: subgraph URLs and the two secrets); each sends its URL back once listening.

/**
 * The viewer an access token names, as gateway/src/auth.ts reads it: the subgraphs trust only
 * the internal token, so a peer must check the member's token itself to sign one for them.
 */
function viewerFrom(authorization, authSecret) {
  if (!authorization) return null;
  const claims = verifyJwt(authorization.replace(/^Bearer\s+/i, ''), authSecret, { iss: 'flywheel-membership', aud: 'flywheel-gateway' });
  if (claims.typ !== 'access' || !claims.sub) throw new Error('Invalid access token');
  const roles = (Array.isArray(claims.roles) ? claims.roles : []).filter((r) => ['CUSTOMER', 'STAFF', 'PARTNER'].includes(r));
  return { id: claims.sub, roles, scopes: [] };
}

async function serveStockApollo({ urls, authSecret, internalSecret }) {
  const { ApolloGateway, RemoteGraphQLDataSource } = require('@apollo/gateway');
  const { ApolloServer } = require('@apollo/server');
  const { startStandaloneServer } = require('@apollo/server/standalone');
  // The stock data source (and so its default fetcher); the internal token is the one addition.
  class InternalTokenSource extends RemoteGraphQLDataSource {
    willSendRequest({ request, context }) {
      request.http.headers.set(INTERNAL_TOKEN_HEADER, signInternalToken(internalSecret, this.name, context?.viewer ?? null));
    }
  }
  const gateway = new ApolloGateway({
    supergraphSdl: readFileSync(SUPERGRAPH, 'utf8'),
    // The supergraph names the subgraphs' in-cluster URLs; the bench stack listens elsewhere.
    buildService: ({ name }) => new InternalTokenSource({ name, url: urls[name] }),
  });
  const { url } = await startStandaloneServer(new ApolloServer({ gateway }), {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => ({ viewer: viewerFrom(req.headers.authorization, authSecret) }),
  });
  return url;
}

async function serveHive({ urls, authSecret, internalSecret }) {
  // The runtime @graphql-hive/gateway is built on (the package re-exports it, with its CLI),
  // resolved from the installed gateway so it is the version that package was locked with.
  const runtimePath = require.resolve('@graphql-hive/gateway-runtime', {
    paths: [dirname(require.resolve('@graphql-hive/gateway/package.json'))],
  });
  const { createGatewayRuntime } = require(runtimePath);
  // One token check per client request, however many subgraph requests its plan makes.
  const viewers = new WeakMap();
  const viewerOf = (request) => {
    if (!viewers.has(request)) viewers.set(request, viewerFrom(request.headers.get('authorization'), authSecret));
    return viewers.get(request);
  };
  const gateway = createGatewayRuntime({
    supergraph: SUPERGRAPH,
    transportEntries: Object.fromEntries(Object.entries(urls).map(([name, location]) => [name, { location }])),
    // Hive's own per-subgraph header hook: called for every subgraph request with its name.
    propagateHeaders: {
      fromClientToSubgraphs: ({ request, subgraphName }) => ({
        [INTERNAL_TOKEN_HEADER]: signInternalToken(internalSecret, subgraphName, viewerOf(request)),
      }),
    },
    logging: 'warn',
    // Everything else is Hive's default. Among the defaults: identical in-flight subgraph queries
    // are sent once (@graphql-tools/executor-http; the key includes the headers, and the internal
    // token is the same for one viewer and subgraph within a second), which issue 11 asks of ours.
  });
  const server = http.createServer(gateway);
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}/graphql`;
}

const PEERS = { stock: serveStockApollo, hive: serveHive };

async function servePeer(peer) {
  // The bench closes the channel to stop a peer, and a bench that died closes it too.
  process.on('disconnect', () => process.exit(0));
  const url = await PEERS[peer](JSON.parse(process.env.BENCH_PEER));
  process.send({ url });
}

/** Starts a peer in a child process; resolves with its URL and a stop(). Its output goes to stderr. */
function startPeer(peer, config, env) {
  const child = fork(__filename, [`serve-${peer}`], {
    env: { ...process.env, ...env, BENCH_PEER: JSON.stringify(config) },
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  // Closing the IPC channel ends the child (servePeer): Hive's Yoga answers SIGTERM by disposing
  // and then stays up behind its open server. SIGKILL if it is still there after 5 s.
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.disconnect();
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${peer} gateway not listening in 60 s`)), 60_000);
    child.once('message', ({ url }) => {
      clearTimeout(timer);
      resolve({ url, stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${peer} gateway exited with ${code} while starting`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The bench.

if (process.argv[2]?.startsWith('serve-')) {
  servePeer(process.argv[2].slice('serve-'.length)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  const { benchStack, closedLoop, token, objectId, gql, must, round } = require('./lib');

  const REQUESTS = Number(process.env.REQUESTS ?? 600); // per (gateway, query) and round
  const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
  const ROUNDS = Number(process.env.ROUNDS ?? 3);
  const WARMUP = Number(process.env.WARMUP ?? Math.min(REQUESTS, 200)); // per (gateway, query)
  // Registering a member needs the development login codes (the bench cannot receive an SMS),
  // which membership refuses in production; the whole stack runs as development, as in
  // bench/events.js, and the peers get the same NODE_ENV. Our response cache is off: the peers
  // have none, and (a) and (c) are anonymous, so it would compare a cache with two gateways
  // (bench:storefront measures the cache).
  const STACK_ENV = { NODE_ENV: 'development', DEV_LOGIN_CODES: 'true', RESPONSE_CACHE: 'false' };

  const PRICE = 'price { amount currency }';
  const QUERIES = {
    // A storefront's home page: articles with the products they mention, the first page of
    // products, upcoming live rooms with theirs (content and live reference catalog's products).
    home: `{
      articles(first: 5) { edges { node { id title summary relatedProducts { id name ${PRICE} } } } }
      products(first: 10) { edges { node { id name ${PRICE} inStock } } }
      liveRooms(first: 5) { edges { node { id title hostName status scheduledAt products { id name ${PRICE} inStock } } } }
    }`,
    // The member's page: membership, then orders, community and referral extend Member.
    me: `{
      me {
        id nickname tier points { balance }
        orders(first: 5) { edges { node { id status total { amount currency } } } }
        groups { id name memberCount }
        inviteCode { code inviteeCount }
      }
    }`,
    products: `{ products(first: 20) { edges { cursor node { id name ${PRICE} inStock } } } }`,
  };

  /** JSON with every object's keys sorted: the peers may order fields differently. */
  const canonical = (v) =>
    JSON.stringify(v, (_, x) =>
      x && typeof x === 'object' && !Array.isArray(x)
        ? Object.fromEntries(
            Object.keys(x)
              .sort()
              .map((k) => [k, x[k]]),
          )
        : x,
    );
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const ratio = (a, b) => Math.round((a / b) * 100) / 100;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // Progress on stderr (stdout carries the one JSON line): a stack start and the seeding take a while.
  const t0 = Date.now();
  const note = (what) => console.error(`[bench:gateway +${Math.round((Date.now() - t0) / 1000)}s] ${what}`);

  /** Through our gateway, as an operator and a shopper would: what the three queries read. */
  async function seed(url, authSecret) {
    const staff = { authorization: `Bearer ${token(authSecret, objectId(), ['STAFF'])}` };
    const call = async (query, variables, what, headers = staff) => must(await gql(url, query, variables, headers), what);
    const { createCategory } = await call('mutation { createCategory(input: { name: "网关基准" }) { id } }', {}, 'createCategory');
    const products = [];
    for (let i = 0; i < 24; i++) {
      const { createProduct } = await call(
        'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
        {
          i: {
            name: `网关基准商品 ${i}`,
            description: '用于网关基准测试的商品',
            categoryId: createCategory.id,
            status: 'ON_SALE',
            skus: [
              { name: '小', price: 1000 + i, stock: 100 },
              { name: '大', price: 2000 + i, stock: 100 },
            ],
          },
        },
        'createProduct',
      );
      products.push(createProduct);
    }
    for (let i = 0; i < 3; i++) {
      const { createArticle } = await call(
        'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
        {
          i: {
            title: `好物推荐 ${i}`,
            type: 'KNOWLEDGE',
            summary: '本周精选',
            body: '三款值得一试的好物。',
            relatedProductIds: products.slice(i * 3, i * 3 + 3).map((p) => p.id),
          },
        },
        'createArticle',
      );
      await call(
        'mutation($i: PublishArticleInput!) { publishArticle(input: $i) { id } }',
        { i: { articleId: createArticle.id } },
        'publish',
      );
    }
    for (let i = 0; i < 2; i++) {
      await call(
        'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
        {
          i: {
            title: `周末直播 ${i}`,
            hostName: '主理人',
            scheduledAt: new Date(Date.now() + (3 + i) * 24 * 3600_000).toISOString(),
            productIds: products.slice(10 + i * 4, 14 + i * 4).map((p) => p.id),
          },
        },
        'scheduleLiveRoom',
      );
    }
    // A welcome group: the member joins it on registering (community consumes the event).
    await call('mutation { createGroup(input: { name: "网关基准群", welcome: true }) { id } }', {}, 'createGroup');

    const phone = `139${String(Date.now()).slice(-8)}`;
    const { requestLoginCode } = await call(
      'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }',
      { p: phone },
      'code',
      {},
    );
    const { login } = await call(
      'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken } }',
      { p: phone, c: requestLoginCode.devCode },
      'login',
      {},
    );
    const member = { authorization: `Bearer ${login.accessToken}` };
    await call(
      'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
      { i: { lines: [{ skuId: products[0].skus[0].id, quantity: 1 }], idempotencyKey: randomBytes(8).toString('hex') } },
      'placeOrder',
      member,
    );
    // The group membership and the invite code follow the registration event: wait for both,
    // so every gateway reads the same settled member.
    for (let deadline = Date.now() + 30_000; ; await sleep(200)) {
      const { me } = await call(QUERIES.me, {}, 'me', member);
      if (me?.groups?.length && me.inviteCode && me.orders?.edges.length) break;
      if (Date.now() > deadline) throw new Error(`the member never settled: ${JSON.stringify(me)}`);
    }
    return { member };
  }

  async function main() {
    const stack = await benchStack(STACK_ENV);
    note('stack ready');
    const peers = [];
    try {
      const { member } = await seed(stack.gatewayUrl, stack.authSecret);
      note('seeded through our gateway');
      const urls = Object.fromEntries(SUBGRAPHS.map((s) => [s, stack.subgraphUrl(s)]));
      // A running stack (BENCH_GATEWAY_URL) must name its subgraphs too: the peers call them.
      const missing = SUBGRAPHS.filter((s) => !urls[s]);
      if (missing.length) throw new Error(`no URL for ${missing.join(', ')}: set BENCH_<NAME>_URL for each subgraph`);
      const config = {
        urls,
        authSecret: stack.authSecret,
        internalSecret: stack.internalSecret,
      };
      const [stock, hive] = await Promise.all([startPeer('stock', config, STACK_ENV), startPeer('hive', config, STACK_ENV)]);
      peers.push(stock, hive);
      note('stock @apollo/gateway and Hive Gateway listening');
      const gateways = { ours: stack.gatewayUrl, stock: stock.url, hive: hive.url };
      const headers = { home: {}, me: member, products: {} };
      const send = (g, q) => () => gql(gateways[g], QUERIES[q], {}, headers[q]);

      // Same answers from all three, or the comparison means nothing.
      for (const q of Object.keys(QUERIES)) {
        const answers = {};
        for (const g of Object.keys(gateways)) {
          const res = await send(g, q)();
          if (res.errors?.length || !res.data) throw new Error(`${g} answered ${q} with errors: ${JSON.stringify(res.errors ?? res)}`);
          answers[g] = canonical(res.data);
        }
        for (const g of ['stock', 'hive']) {
          if (answers[g] !== answers.ours) {
            throw new Error(`${q}: ${g} differs from ours:\n ours: ${answers.ours.slice(0, 2000)}\n ${g}: ${answers[g].slice(0, 2000)}`);
          }
        }
      }

      note('same answers from all three');
      // Warm-up: query plans, document caches, JIT and keep-alive connections, for each pair.
      for (const q of Object.keys(QUERIES)) for (const g of Object.keys(gateways)) await closedLoop(WARMUP, CONCURRENCY, send(g, q));

      note('warmed up; measuring');
      const runs = {};
      let errors = 0;
      for (let r = 0; r < ROUNDS; r++) {
        for (const q of Object.keys(QUERIES)) {
          // Each round starts with another gateway, so none is always the first after a switch.
          const order = Object.keys(gateways);
          for (const g of [...order.slice(r % 3), ...order.slice(0, r % 3)]) {
            const { rps, p50, p99, errors: e } = await closedLoop(REQUESTS, CONCURRENCY, send(g, q));
            errors += e;
            ((runs[q] ??= {})[g] ??= []).push({ rps, p50, p99 });
          }
        }
      }

      const queries = {};
      for (const [q, byGateway] of Object.entries(runs)) {
        const out = {};
        for (const [g, xs] of Object.entries(byGateway)) {
          out[g] = {
            rps: round(median(xs.map((x) => x.rps))),
            p50Ms: round(median(xs.map((x) => x.p50))),
            p99Ms: round(median(xs.map((x) => x.p99))),
          };
        }
        out.oursToStock = { rps: ratio(out.ours.rps, out.stock.rps), p99: ratio(out.ours.p99Ms, out.stock.p99Ms) };
        out.oursToHive = { rps: ratio(out.ours.rps, out.hive.rps), p99: ratio(out.ours.p99Ms, out.hive.p99Ms) };
        queries[q] = out;
      }
      console.log(JSON.stringify({ ...queries, errors, requests: REQUESTS, concurrency: CONCURRENCY, rounds: ROUNDS, warmup: WARMUP }));
      if (errors) throw new Error(`${errors} measured requests failed or answered with errors`);
    } finally {
      try {
        await Promise.all(peers.map((p) => p.stop()));
      } finally {
        await stack.stop();
      }
    }
  }

  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
