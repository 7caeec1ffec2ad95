#!/usr/bin/env node
// Event lag: a steady stream of `orders.order.paid` events (published to JetStream as orders'
// outbox relay does: a validated envelope, Nats-Msg-Id = event id) for registered members, and
// for each one the time until the points it earns are visible through the gateway
// (`me { points { balance } }`, polled as the member). Prints one JSON line: the rate offered,
// the rate held (events whose points became visible per second of the run), lag p50/p99/max.
const { performance } = require('node:perf_hooks');
const { randomUUID } = require('node:crypto');
const { connect } = require('nats');
const { envelope, streamName } = require('../packages/events/dist');
const { benchStack, commandsPerOp, gql, must, percentile, round } = require('./lib');

const RATE = Number(process.env.RATE ?? 15); // paid events per second (about 20/s saturates 2 cores)
const SECONDS = Number(process.env.DURATION_SECONDS ?? 30);
const MEMBERS = Number(process.env.MEMBERS ?? 40);
const POLL_MS = Number(process.env.POLL_MS ?? 20);
const POLLERS = Number(process.env.POLLERS ?? 2);
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

/** Until membership's consumer of paid events has nothing pending or unacknowledged. */
async function drained(jsm) {
  const durable = 'membership_orders-order-paid';
  for (;;) {
    const info = await jsm.consumers.info(streamName('orders'), durable);
    if (info.num_pending === 0 && info.num_ack_pending === 0) return;
    await sleep(50);
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
        waiting: [],
        busy: false,
      });
    }
    const js = nc.jetstream();
    const lags = [];
    // Lag per event in publish order: a load that is held keeps the last third's lag near the first's.
    const byTime = [];
    let failed = 0;
    let publishing = true;
    let lastVisible = 0;
    const total = RATE * SECONDS;
    const t0 = performance.now();
    // A fixed pool of pollers (bounded load, so measuring cannot swamp what is measured) walks the
    // members that have events in flight; one balance read settles every event it covers.
    const pollers = Array.from({ length: POLLERS }, async () => {
      for (;;) {
        const m = members.find((x) => x.waiting.length && !x.busy);
        if (!m) {
          if (!publishing && members.every((x) => !x.waiting.length)) return;
          await sleep(POLL_MS);
          continue;
        }
        m.busy = true;
        const res = await gql(url, ME, {}, m.auth).catch(() => null);
        const balance = res?.data?.me?.points?.balance ?? -1;
        const now = performance.now();
        m.waiting = m.waiting.filter((w) => {
          if (balance >= w.expected) {
            lags.push(now - w.publishedAt);
            byTime[w.n] = now - w.publishedAt;
            lastVisible = Math.max(lastVisible, now);
            return false;
          }
          if (now - w.publishedAt > TIMEOUT_MS) {
            failed++;
            return false;
          }
          return true;
        });
        // Next time another member goes first.
        members.push(members.splice(members.indexOf(m), 1)[0]);
        m.busy = false;
        // Bounded polling: at most POLLERS / POLL_MS reads a second, however far behind it is.
        await sleep(POLL_MS);
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
      m.waiting.push({ n, expected: m.expected, publishedAt });
    }
    publishing = false;
    const publishSeconds = (performance.now() - t0) / 1000;
    await Promise.all(pollers);
    const wallSeconds = (lastVisible - t0) / 1000;

    // Database commands membership sends per paid event, on a batch with no one polling.
    const BATCH = 50;
    const jsm = await nc.jetstreamManager();
    const paidEventCommands = await commandsPerOp(stack, async () => {
      for (let n = 0; n < BATCH; n++) {
        const env = paidEvent(members[n % members.length].id, 10_000);
        await js.publish('orders.order.paid', JSON.stringify(env), { msgID: env.id });
      }
      await drained(jsm);
      return BATCH;
    });
    lags.sort((a, b) => a - b);
    const third = (from) =>
      byTime
        .slice(from, from + Math.floor(total / 3))
        .filter((x) => x !== undefined)
        .sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        events: total,
        members: MEMBERS,
        offeredPerSec: RATE,
        publishedPerSec: round(total / publishSeconds),
        // Events whose points were visible, over the time from the first publish to the last one seen.
        heldPerSec: round(lags.length / wallSeconds),
        visible: lags.length,
        timedOut: failed,
        lagP50Ms: round(percentile(lags, 50)),
        lagP99Ms: round(percentile(lags, 99)),
        lagMaxMs: round(lags.at(-1) ?? null),
        lagP50FirstThirdMs: round(percentile(third(0), 50)),
        lagP50LastThirdMs: round(percentile(third(total - Math.floor(total / 3)), 50)),
        drainSeconds: round(wallSeconds - publishSeconds),
        dbCommandsPerOp: { paidEvent: paidEventCommands },
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
