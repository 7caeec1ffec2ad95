#!/usr/bin/env node
// Group buy (拼团): GROUPS leaders (default 100) each open a group of SIZE (default 5) and pay; then
// MEMBERS members (default 1000) try to join, CONCURRENCY (default 100) in flight at any moment,
// spread evenly over the groups, through the gateway (placeOrder under the offer). Every accepted join is paid; the groups fill.
// Prints one JSON line: {"groupsFilled","overfilled","joinsPerSec","p50Ms","p99Ms",…}, with a
// baseline of the same number of plain checkouts at once. Asserts nothing.
const { performance } = require('node:perf_hooks');
const { benchStack, token, objectId, gql, must, percentile, round } = require('./lib');

const GROUPS = Number(process.env.GROUPS ?? 100);
const SIZE = Number(process.env.SIZE ?? 5);
const MEMBERS = Number(process.env.MEMBERS ?? 1000);
/** Requests in flight at once during a rush (all of them with CONCURRENCY=MEMBERS). */
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 100);
const PRICE = 9900;
const GROUP_PRICE = 5900;
const PLACE = 'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id groupBuy { groupId } } }';

const customer = (secret) => ({ authorization: `Bearer ${token(secret, objectId(), ['CUSTOMER'])}` });

/** Runs `fn` over `items`, `width` at a time. */
async function pool(items, width, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Sends the requests CONCURRENCY at a time; latencies (ms) and outcomes (ORDER or the error code, with the reason). */
async function rush(url, requests) {
  const latencies = [];
  const outcomes = {};
  const t0 = performance.now();
  const results = new Array(requests.length).fill(null);
  const indexed = requests.map((r, i) => ({ ...r, i }));
  await pool(indexed, Math.min(CONCURRENCY, requests.length), async ({ headers, input, i }) => {
    results[i] = await (async () => {
      const s = performance.now();
      let r;
      try {
        r = await gql(url, PLACE, { i: input }, headers);
      } catch (err) {
        r = { errors: [{ extensions: { code: `NETWORK:${err.code ?? err.message}` } }] };
      }
      latencies.push(performance.now() - s);
      const e = r.errors?.[0]?.extensions;
      const outcome = r.data?.placeOrder ? 'ORDER' : [e?.code ?? 'UNKNOWN', e?.reason].filter(Boolean).join(':');
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      return r.data?.placeOrder ?? null;
    })();
  });
  latencies.sort((a, b) => a - b);
  return { results, latencies, outcomes, wallMs: performance.now() - t0 };
}

async function main() {
  const stack = await benchStack({ NODE_ENV: 'development' });
  try {
    const url = stack.gatewayUrl;
    const ordersUrl = stack.subgraphUrl('orders').replace(/\/graphql$/, '');
    const staff = { authorization: `Bearer ${token(stack.authSecret, objectId(), ['STAFF'])}` };
    const product = async (name, stock) =>
      must(
        await gql(
          url,
          'mutation($i: CreateProductInput!) { createProduct(input: $i) { skus { id } } }',
          {
            i: { name, status: 'ON_SALE', skus: [{ name: '1kg', price: PRICE, stock }] },
          },
          staff,
        ),
        'createProduct',
      );
    const skuId = (await product('拼团燕麦礼盒', GROUPS * SIZE * 2)).createProduct.skus[0].id;
    const offerId = must(
      await gql(
        url,
        'mutation($i: CreateGroupBuyOfferInput!) { createGroupBuyOffer(input: $i) { id } }',
        {
          i: {
            skuId,
            groupSize: SIZE,
            groupPrice: GROUP_PRICE,
            durationMinutes: 60,
            startsAt: new Date(Date.now() - 60_000),
            endsAt: new Date(Date.now() + 86_400_000),
            stockCap: GROUPS * SIZE * 2,
            perMemberLimit: 1,
            virtualCompletion: false,
            idempotencyKey: `bench-${objectId()}`,
          },
        },
        staff,
      ),
      'createGroupBuyOffer',
    ).createGroupBuyOffer.id;
    const line = { skuId, quantity: 1 };

    async function pay(headers, orderId) {
      const intent = must(
        await gql(url, 'mutation($o: ID!) { payOrder(input: { orderId: $o }) { id } }', { o: orderId }, headers),
        'payOrder',
      );
      const res = await fetch(`${ordersUrl}/payments/test/simulate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ intentId: intent.payOrder.id }),
      });
      if (res.status !== 200) throw new Error(`simulated payment: HTTP ${res.status}`);
    }

    // The leaders open their groups and pay.
    const leaders = Array.from({ length: GROUPS }, () => customer(stack.authSecret));
    const groups = [];
    await pool(leaders, 20, async (headers) => {
      const o = must(
        await gql(
          url,
          PLACE,
          { i: { lines: [line], idempotencyKey: objectId(), noCoupon: true, referralOffer: { groupBuy: { offerId } } } },
          headers,
        ),
        'open group',
      ).placeOrder;
      await pay(headers, o.id);
      groups.push(o.groupBuy.groupId);
    });

    // The rush: every member at once, evenly over the groups.
    const members = Array.from({ length: MEMBERS }, (_, i) => ({
      headers: customer(stack.authSecret),
      input: {
        lines: [line],
        idempotencyKey: objectId(),
        noCoupon: true,
        referralOffer: { groupBuy: { offerId, groupId: groups[i % GROUPS] } },
      },
    }));
    const joins = await rush(url, members);
    const perGroup = new Map(groups.map((g) => [g, 1]));
    joins.results.forEach((o) => o && perGroup.set(o.groupBuy.groupId, perGroup.get(o.groupBuy.groupId) + 1));

    // Every accepted join pays; then the groups should have succeeded.
    const accepted = joins.results.flatMap((o, i) => (o ? [{ headers: members[i].headers, id: o.id }] : []));
    await pool(accepted, 20, (a) => pay(a.headers, a.id));
    const status = async () => {
      const s = {};
      await pool(groups, 10, async (g) => {
        // A busy referral may not answer in time: the last answer stands until the next poll.
        const r = await gql(url, 'query($id: ID!) { groupBuy(id: $id) { status slotsTaken memberCount } }', { id: g }).catch(() => ({}));
        s[g] = r.data?.groupBuy ?? s[g] ?? { status: 'OPEN', slotsTaken: 0, memberCount: 0 };
      });
      return s;
    };
    let final = await status();
    for (let deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 1_000))) {
      final = await status();
      if (Object.values(final).every((g) => g.status !== 'OPEN' || g.slotsTaken < SIZE)) break;
    }
    const views = Object.values(final);

    // Baseline: the same number of plain checkouts (no offer) at once.
    const plainSku = (await product('燕麦片', MEMBERS * 2)).createProduct.skus[0].id;
    const plain = await rush(
      url,
      Array.from({ length: MEMBERS }, () => ({
        headers: customer(stack.authSecret),
        input: { lines: [{ skuId: plainSku, quantity: 1 }], idempotencyKey: objectId(), noCoupon: true },
      })),
    );

    const joinsPerSec = MEMBERS / (joins.wallMs / 1000);
    const plainPerSec = MEMBERS / (plain.wallMs / 1000);
    console.log(
      JSON.stringify({
        groupsFilled: views.filter((g) => g.status === 'SUCCEEDED').length,
        overfilled:
          [...perGroup.values()].filter((n) => n > SIZE).length + views.filter((g) => g.slotsTaken > SIZE || g.memberCount > SIZE).length,
        joinsPerSec: round(joinsPerSec),
        p50Ms: round(percentile(joins.latencies, 50)),
        p99Ms: round(percentile(joins.latencies, 99)),
        groups: GROUPS,
        groupSize: SIZE,
        members: MEMBERS,
        concurrency: CONCURRENCY,
        joined: accepted.length,
        outcomes: joins.outcomes,
        groupsWithAllSlots: views.filter((g) => g.slotsTaken === SIZE).length,
        wallMs: Math.round(joins.wallMs),
        baseline: {
          plainCheckoutsPerSec: round(plainPerSec),
          p50Ms: round(percentile(plain.latencies, 50)),
          p99Ms: round(percentile(plain.latencies, 99)),
          outcomes: plain.outcomes,
        },
        joinVsPlainThroughput: round(joinsPerSec / plainPerSec),
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
