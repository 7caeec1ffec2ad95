#!/usr/bin/env node
// Event lag: a steady stream of `orders.order.paid` events (published to JetStream as orders'
// outbox relay does: a validated envelope, Nats-Msg-Id = event id) spread over registered members,
// and the time until the points an event earns are visible through the gateway
// (`me { points { balance } }`, read as the member). Prints one JSON line: the rate offered, the
// rate held, lag p50/p99/max, database commands per paid event and per payment (an order paid
// through the test provider: `payOrder`, the provider's signed callback, and what the paid event
// then costs every consumer).
//
// Lag is sampled: the events of WATCH members (every MEMBERS / WATCH-th one) are timed, each such
// member read while it has an event in flight, every POLL_MS or a tenth of its oldest wait if
// longer (one read settles all of its events). Timing every event would take a read per event per
// POLL_MS, as much load again as what is measured; the watched members get the same share of the
// stream as every other one. Nothing is lost either way: at the end every member's balance must
// reach what all of its events earn.
const { performance } = require('node:perf_hooks');
const { randomUUID } = require('node:crypto');
const { connect } = require('nats');
const { envelope, streamName } = require('../packages/events/dist');
const { benchStack, commandsPerOp, gql, must, objectId, percentile, round, token } = require('./lib');

const RATE = Number(process.env.RATE ?? 15); // paid events per second
const SECONDS = Number(process.env.DURATION_SECONDS ?? 30);
const MEMBERS = Number(process.env.MEMBERS ?? 40);
const WATCH = Math.min(MEMBERS, Number(process.env.WATCH ?? 8));
const POLL_MS = Number(process.env.POLL_MS ?? 10);
const TIMEOUT_MS = Number(process.env.LAG_TIMEOUT_MS ?? 60_000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An `orders.order.paid` envelope as orders' outbox relay publishes it. */
function paidEvent(memberId, totalFen) {
  const orderId = randomUUID().replace(/-/g, '');
  return envelope(
    'orders.order.paid',
    {
      orderId,
      memberId,
      total: totalFen,
      currency: 'CNY',
      lines: [{ skuId: 'bench-sku', productId: 'bench-product', quantity: 1, unitPrice: totalFen, priceKind: 'LIST' }],
      source: { kind: 'DIRECT' },
      paymentId: `pay-${orderId}`,
      paidAt: new Date().toISOString(),
    },
    { id: randomUUID() },
  );
}

/** Until every consumer of orders' events (membership's, and the other services') has nothing pending or unacknowledged. */
async function drained(jsm, everyMs = 50) {
  for (;;) {
    const consumers = await jsm.consumers.list(streamName('orders')).next();
    if (consumers.every((c) => c.num_pending === 0 && c.num_ack_pending === 0)) return;
    await sleep(everyMs);
  }
}
const ME = '{ me { points { balance } } }';

async function main() {
  // Development codes to register members by phone (the bench cannot receive an SMS).
  const stack = await benchStack({ NODE_ENV: 'development', DEV_LOGIN_CODES: 'true' });
  const nc = await connect({ servers: stack.natsUrl });
  try {
    const url = stack.gatewayUrl;
    const members = [];
    for (let i = 0; i < MEMBERS; i++) {
      const phone = `137${String(10_000_000 + i).slice(-8)}`;
      const code = must(
        await gql(url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone }),
        'code',
      ).requestLoginCode.devCode;
      const login = must(
        await gql(
          url,
          'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
          {
            p: phone,
            c: code,
          },
        ),
        'login',
      ).login;
      members.push({
        id: login.session.member.id,
        auth: { authorization: `Bearer ${login.accessToken}` },
        expected: 0,
        published: 0,
        waiting: [],
        wake: null,
      });
    }
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const balanceOf = async (m) => (await gql(url, ME, {}, m.auth).catch(() => null))?.data?.me?.points?.balance ?? -1;
    const watched = members.filter((_, i) => i % Math.floor(MEMBERS / WATCH) === 0).slice(0, WATCH);
    const lags = [];
    // Lag per watched event in publish order: a load that is held keeps the last third's lag near the first's.
    const byTime = [];
    let failed = 0;
    let publishing = true;
    const total = RATE * SECONDS;
    const t0 = performance.now();
    // One reader per watched member, reading only while it has events in flight.
    const pollers = watched.map(async (m) => {
      for (;;) {
        if (!m.waiting.length) {
          if (!publishing) return;
          await new Promise((r) => (m.wake = r));
          continue;
        }
        const balance = await balanceOf(m);
        const now = performance.now();
        m.waiting = m.waiting.filter((w) => {
          if (balance >= w.expected) {
            lags.push(now - w.publishedAt);
            byTime.push([w.n, now - w.publishedAt]);
            return false;
          }
          if (now - w.publishedAt > TIMEOUT_MS) {
            failed++;
            return false;
          }
          return true;
        });
        // Resolution relative to the lag (a tenth of the oldest wait, at least POLL_MS): reads
        // cannot pile up on a backlog and swamp what they measure.
        if (m.waiting.length) await sleep(Math.max(POLL_MS, (performance.now() - m.waiting[0].publishedAt) / 10));
      }
    });
    for (let n = 0; n < total; n++) {
      // Steady: the n-th event leaves at n / RATE seconds, whatever the previous ones cost.
      const due = t0 + (n * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const m = members[n % members.length];
      const totalFen = 10_000 + ((n * 137) % 90_000); // ¥100–¥1,000: 1 point per yuan at REGULAR…
      const env = paidEvent(m.id, totalFen);
      const publishedAt = performance.now();
      await js.publish('orders.order.paid', JSON.stringify(env), { msgID: env.id });
      // …and the tier multiplier once growth lifts the member: the balance only has to reach at
      // least the REGULAR amount to show this event landed (balances only grow here).
      m.expected += Math.floor(totalFen / 100);
      m.published++;
      if (watched.includes(m)) {
        m.waiting.push({ n, expected: m.expected, publishedAt });
        m.wake?.();
      }
    }
    publishing = false;
    for (const m of watched) m.wake?.();
    const publishSeconds = (performance.now() - t0) / 1000;
    await Promise.all(pollers);
    // Every event of every member visible: the held rate is the events over the time until then.
    let visible = 0;
    const pending = new Set(members);
    for (const deadline = performance.now() + TIMEOUT_MS; pending.size && performance.now() < deadline;) {
      await Promise.all(
        [...pending].map(async (m) => {
          if ((await balanceOf(m)) < m.expected) return;
          pending.delete(m);
          visible += m.published;
        }),
      );
      if (pending.size) await sleep(POLL_MS);
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    await drained(jsm);

    // Database commands membership sends per paid event: a burst of 50 (the consumer works on
    // several at once), then 50 one at a time (each handled alone, as at a low rate).
    const BATCH = 50;
    const paidEventCommands = await commandsPerOp(stack, async () => {
      for (let n = 0; n < BATCH; n++) {
        const env = paidEvent(members[n % members.length].id, 10_000);
        await js.publish('orders.order.paid', JSON.stringify(env), { msgID: env.id });
      }
      await drained(jsm);
      return BATCH;
    });
    const aloneCommands = await commandsPerOp(stack, async () => {
      for (let n = 0; n < BATCH; n++) {
        const env = paidEvent(members[n % members.length].id, 10_000);
        await js.publish('orders.order.paid', JSON.stringify(env), { msgID: env.id });
        await drained(jsm, 2);
      }
      return BATCH;
    });

    // Database commands per payment: PAYMENTS members each pay an order placed beforehand
    // (`payOrder`, then the test provider charges and calls orders back), until orders' paid event
    // is consumed everywhere. The callback is what a real provider sends; nothing is shortcut.
    const PAYMENTS = 20;
    const staff = { authorization: `Bearer ${token(stack.authSecret, objectId(), ['STAFF'])}` };
    const skuId = must(
      await gql(
        url,
        'mutation($i: CreateProductInput!) { createProduct(input: $i) { skus { id } } }',
        { i: { name: '燕麦片', status: 'ON_SALE', skus: [{ name: '500g', price: 9_900, stock: 1_000 }] } },
        staff,
      ),
      'createProduct',
    ).createProduct.skus[0].id;
    const toPay = [];
    for (let n = 0; n < PAYMENTS; n++) {
      const m = members[n % members.length];
      const order = must(
        await gql(
          url,
          'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
          { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: `bench-pay-${n}`, noCoupon: true } },
          m.auth,
        ),
        'placeOrder',
      ).placeOrder;
      toPay.push({ m, orderId: order.id });
    }
    const ordersUrl = stack.subgraphUrl('orders').replace(/\/graphql$/, '');
    const paymentCommands = await commandsPerOp(stack, async () => {
      for (const { m, orderId } of toPay) {
        const intent = must(
          await gql(url, 'mutation($o: ID!) { payOrder(input: { orderId: $o }) { id } }', { o: orderId }, m.auth),
          'payOrder',
        );
        const res = await fetch(`${ordersUrl}/payments/test/simulate`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ intentId: intent.payOrder.id }),
        });
        const { deliveries } = await res.json();
        // The provider delivered its callback and orders acknowledged it: the order is paid.
        if (res.status !== 200 || deliveries?.[0]?.status !== 200)
          throw new Error(`simulated payment: HTTP ${res.status} ${JSON.stringify(deliveries)}`);
      }
      // Orders' relay publishes the paid events; then every consumer takes them.
      await sleep(1_000);
      await drained(jsm);
      return PAYMENTS;
    });
    for (const { m, orderId } of toPay) {
      const { status } = must(await gql(url, 'query($o: ID!) { order(id: $o) { status } }', { o: orderId }, m.auth), 'order').order;
      if (status !== 'PAID') throw new Error(`order ${orderId} is ${status} after its payment`);
    }
    lags.sort((a, b) => a - b);
    byTime.sort((a, b) => a[0] - b[0]);
    const third = (i) =>
      byTime
        .slice(Math.floor((i * byTime.length) / 3), Math.floor(((i + 1) * byTime.length) / 3))
        .map(([, lag]) => lag)
        .sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        events: total,
        members: MEMBERS,
        offeredPerSec: RATE,
        publishedPerSec: round(total / publishSeconds),
        // Events visible (every member's balance checked at the end), over the time from the first
        // publish until all of them were.
        heldPerSec: round(visible / wallSeconds),
        visible,
        timedOut: failed + pending.size,
        lagSamples: lags.length,
        lagP50Ms: round(percentile(lags, 50)),
        lagP99Ms: round(percentile(lags, 99)),
        lagMaxMs: round(lags.at(-1) ?? null),
        lagP50FirstThirdMs: round(percentile(third(0), 50)),
        lagP50LastThirdMs: round(percentile(third(2), 50)),
        // The stream's last third: past the start, when every member is new and each order of
        // theirs moves a tier or a segment (the first third's extra writes).
        lagP99LastThirdMs: round(percentile(third(2), 99)),
        drainSeconds: round(wallSeconds - publishSeconds),
        dbCommandsPerOp: { paidEvent: paidEventCommands, paidEventAlone: aloneCommands, payment: paymentCommands },
      }),
    );
  } finally {
    await nc.close();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
