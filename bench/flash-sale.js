#!/usr/bin/env node
// Flash sale (秒杀): BUYERS concurrent members (default 1000) each try to buy one unit of a flash
// SKU with UNITS units (default 100), all at the same moment, through the gateway. Prints one
// JSON line: {"orders","oversold","ledgerBalanced","ordersPerSec","p50Ms","p99Ms",…}. Asserts nothing.
const { performance } = require('node:perf_hooks');
const { benchStack, commandsPerOp, token, objectId, gql, must, percentile, round } = require('./lib');

const BUYERS = Number(process.env.BUYERS ?? 1000);
const UNITS = Number(process.env.UNITS ?? 100);
const LIST_PRICE = 9900;
const FLASH_PRICE = 990;

async function main() {
  const stack = await benchStack();
  try {
    const url = stack.gatewayUrl;
    const staff = { authorization: `Bearer ${token(stack.authSecret, objectId(), ['STAFF'])}` };
    const created = must(
      await gql(
        url,
        'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
        { i: { name: '秒杀燕麦礼盒', status: 'ON_SALE', skus: [{ name: '1kg', price: LIST_PRICE, stock: UNITS }] } },
        staff,
      ),
      'createProduct',
    ).createProduct;
    const skuId = created.skus[0].id;
    const startsAt = new Date(Date.now() + 2_000);
    const flash = must(
      await gql(
        url,
        'mutation($i: CreateFlashSaleInput!) { createFlashSale(input: $i) { flashSale { id quota } } }',
        { i: { skuId, flashPrice: FLASH_PRICE, quota: UNITS, perMemberLimit: 1, startsAt, endsAt: new Date(Date.now() + 3_600_000) } },
        staff,
      ),
      'createFlashSale',
    ).createFlashSale.flashSale;
    const buyers = Array.from({ length: BUYERS }, () => ({ authorization: `Bearer ${token(stack.authSecret, objectId(), ['CUSTOMER'])}` }));
    await new Promise((r) => setTimeout(r, Math.max(0, startsAt.getTime() - Date.now()) + 100));

    const latencies = [];
    const outcomes = {};
    let flashPriced = 0;
    let wallMs = 0;
    // The rush's database commands per buyer (winners and turned-away buyers together).
    const rush = await commandsPerOp(stack, async () => {
      const t0 = performance.now();
      await Promise.all(
        buyers.map(async (headers, i) => {
          const s = performance.now();
          let r;
          try {
            r = await gql(
              url,
              'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } } }',
              { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: `flash-${i}` } },
              headers,
            );
          } catch (err) {
            r = { errors: [{ extensions: { code: `NETWORK:${err.code ?? err.message}` } }] };
          }
          latencies.push(performance.now() - s);
          const outcome = r.data?.placeOrder ? 'ORDER' : (r.errors?.[0]?.extensions?.code ?? 'UNKNOWN');
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          if (r.data?.placeOrder?.total.amount === FLASH_PRICE) flashPriced++;
        }),
      );
      wallMs = performance.now() - t0;
      return BUYERS;
    });

    const stock = must(
      await gql(
        url,
        'query($id: ID!) { product(id: $id) { skus { stock { available onHand reserved sold } } } }',
        { id: created.id },
        staff,
      ),
      'stock',
    ).product.skus[0].stock;
    const flashNow = must(
      await gql(url, 'query($id: ID!) { flashSale(id: $id) { remaining quota status } }', { id: flash.id }, staff),
      'flashSale',
    ).flashSale;
    // Database commands of one ordinary checkout (list price, stock to spare), buyer by buyer.
    const plain = must(
      await gql(
        url,
        'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
        { i: { name: '燕麦片', status: 'ON_SALE', skus: [{ name: '500g', price: LIST_PRICE, stock: 1_000 }] } },
        staff,
      ),
      'createProduct',
    ).createProduct.skus[0].id;
    const CHECKOUTS = 50;
    const checkout = await commandsPerOp(stack, async () => {
      for (let i = 0; i < CHECKOUTS; i++) {
        must(
          await gql(
            url,
            'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
            { i: { lines: [{ skuId: plain, quantity: 1 }], idempotencyKey: `plain-${i}` } },
            buyers[i],
          ),
          'placeOrder',
        );
      }
      return CHECKOUTS;
    });

    const orders = outcomes.ORDER ?? 0;
    latencies.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        orders,
        oversold: Math.max(0, orders - UNITS),
        ledgerBalanced: stock.onHand === stock.available + stock.reserved + stock.sold && stock.available >= 0 && flashNow.remaining >= 0,
        ordersPerSec: round(orders / (wallMs / 1000)),
        p50Ms: round(percentile(latencies, 50)),
        p99Ms: round(percentile(latencies, 99)),
        buyers: BUYERS,
        units: UNITS,
        flashPriced,
        outcomes,
        wallMs: Math.round(wallMs),
        requestsPerSec: round(BUYERS / (wallMs / 1000)),
        skuStock: stock,
        flashSale: flashNow,
        dbCommandsPerOp: { rushPerBuyer: rush, checkout },
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
