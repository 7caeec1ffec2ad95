#!/usr/bin/env node
// Storefront: category list + product detail + cart view, through the gateway versus the same
// queries sent straight to the subgraphs (with the internal token the gateway would sign), in
// one process, alternating phases. Prints one JSON line with both rates, p50/p99 and the ratio.
// Then an anonymous visitor's category page through the stack's gateway (response cache on, the
// default) and through a second gateway process on the same subgraphs with RESPONSE_CACHE=false,
// alternating phases too: `anonymousCategory` in the same line, with the cached/uncached ratio.
const { benchStack, closedLoop, commandsPerOp, token, objectId, gql, must, round, signInternalToken } = require('./lib');

const REQUESTS = Number(process.env.REQUESTS ?? 1500); // per phase
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 2);

const CATEGORY =
  'query($c: ID!) { products(first: 20, categoryId: $c) { edges { cursor node { id name price { amount currency } inStock } } } }';
const DETAIL =
  'query($p: ID!) { product(id: $p) { id name description price { amount currency } skus { id name price { amount } inStock stock { available } } } }';
const CART = '{ cart { itemCount total { amount } lines { quantity status subtotal { amount } sku { id } } } }';

async function phase(requests) {
  const { rps, p50, p99, errors } = await closedLoop(REQUESTS, CONCURRENCY, (i) => requests[i % requests.length]());
  return { rps, p50, p99, errors };
}

/** Phases of one kind: mean rate and percentiles, errors summed. */
function summary(phases) {
  const mean = (k) => round(phases.reduce((s, x) => s + x[k], 0) / phases.length);
  return { rps: mean('rps'), p50Ms: mean('p50'), p99Ms: mean('p99'), errors: phases.reduce((s, x) => s + x.errors, 0) };
}

/**
 * The same anonymous category page through a gateway with the response cache and through one
 * without, on the same subgraphs; null on a running stack (BENCH_GATEWAY_URL), where this script
 * cannot start a gateway of its own.
 */
async function anonymousCategoryPage(stack, category) {
  if (!stack.startGateway) return null;
  const cachedUrl = stack.gatewayUrl;
  const uncachedUrl = await stack.startGateway({ RESPONSE_CACHE: 'false' });
  const page = (url) => () => gql(url, CATEGORY, { c: category });
  // Same answer both ways, and the cached one really from the cache, or the figures mean nothing.
  const [a, b] = [await page(cachedUrl)(), await page(uncachedUrl)()];
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`anonymous category page differs: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  const hit = await fetch(cachedUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CATEGORY, variables: { c: category } }),
  });
  if (!hit.headers.get('age'))
    throw new Error(`the anonymous category page was not answered from the cache (cache-control: ${hit.headers.get('cache-control')})`);
  await phase([page(uncachedUrl)]); // warm-up
  await phase([page(cachedUrl)]);
  const cached = [];
  const uncached = [];
  for (let r = 0; r < ROUNDS; r++) {
    uncached.push(await phase([page(uncachedUrl)]));
    cached.push(await phase([page(cachedUrl)]));
  }
  const result = { cached: summary(cached), uncached: summary(uncached) };
  return { ...result, cachedToUncachedRpsRatio: Math.round((result.cached.rps / result.uncached.rps) * 100) / 100 };
}

async function main() {
  const stack = await benchStack();
  try {
    const url = stack.gatewayUrl;
    const staff = { authorization: `Bearer ${token(stack.authSecret, objectId(), ['STAFF'])}` };
    const category = must(await gql(url, 'mutation { createCategory(input: { name: "基准类目" }) { id } }', {}, staff), 'createCategory')
      .createCategory.id;
    const products = [];
    for (let i = 0; i < 20; i++) {
      const p = must(
        await gql(
          url,
          'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
          {
            i: {
              name: `基准商品 ${i}`,
              description: '用于基准测试的商品',
              categoryId: category,
              status: 'ON_SALE',
              skus: [
                { name: '小', price: 1000 + i, stock: 100 },
                { name: '大', price: 2000 + i, stock: 100 },
              ],
            },
          },
          staff,
        ),
        'createProduct',
      ).createProduct;
      products.push(p);
    }
    const memberId = objectId();
    const member = { authorization: `Bearer ${token(stack.authSecret, memberId, ['CUSTOMER'])}` };
    for (const p of products.slice(0, 3)) {
      must(
        await gql(
          url,
          'mutation($i: AddCartLineInput!) { addCartLine(input: $i) { itemCount } }',
          { i: { skuId: p.skus[0].id, quantity: 2 } },
          member,
        ),
        'cart',
      );
    }

    const viewer = { id: memberId, roles: ['CUSTOMER'], scopes: [] };
    const direct = (subgraph) => ({ 'flywheel-internal-token': signInternalToken(stack.internalSecret, subgraph, viewer) });
    // Internal tokens live 60 s: re-sign per request, as the gateway does.
    const viaGateway = [
      () => gql(url, CATEGORY, { c: category }, member),
      () => gql(url, DETAIL, { p: products[7].id }, member),
      () => gql(url, CART, {}, member),
    ];
    const viaSubgraphs = [
      () => gql(stack.subgraphUrl('catalog'), CATEGORY, { c: category }, direct('catalog')),
      () => gql(stack.subgraphUrl('catalog'), DETAIL, { p: products[7].id }, direct('catalog')),
      () => gql(stack.subgraphUrl('orders'), CART, {}, direct('orders')),
    ];
    // Same answers both ways, or the comparison means nothing.
    for (let i = 0; i < 3; i++) {
      const [a, b] = [await viaGateway[i](), await viaSubgraphs[i]()];
      if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`query ${i} differs: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
    await phase(viaSubgraphs);
    await phase(viaGateway); // warm-up
    const g = [];
    const d = [];
    for (let r = 0; r < ROUNDS; r++) {
      d.push(await phase(viaSubgraphs));
      g.push(await phase(viaGateway));
    }
    // Database commands per storefront operation, each measured on its own through the gateway.
    const OPS = 100;
    const perOp = async (send) => commandsPerOp(stack, async () => (await closedLoop(OPS, CONCURRENCY, send), OPS));
    const dbCommandsPerOp = {
      categoryList: await perOp(viaGateway[0]),
      productDetail: await perOp(viaGateway[1]),
      cart: await perOp(viaGateway[2]),
    };
    const gateway = summary(g);
    const subgraphs = summary(d);
    const anonymousCategory = await anonymousCategoryPage(stack, category);
    console.log(
      JSON.stringify({
        gateway,
        direct: subgraphs,
        gatewayToDirectRpsRatio: Math.round((gateway.rps / subgraphs.rps) * 100) / 100,
        dbCommandsPerOp,
        anonymousCategory,
        requestsPerPhase: REQUESTS,
        concurrency: CONCURRENCY,
        rounds: ROUNDS,
      }),
    );
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
